package artifact

import (
	"testing"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
)

// TestEnumTables: every API value but UNSPECIFIED has exactly one domain
// value and back; UNSPECIFIED is "", an unknown value is refused.
func TestEnumTables(t *testing.T) {
	for v := range modelv1.ModelFormat_name {
		p := modelv1.ModelFormat(v)
		f, ok := FormatFromPB(p)
		if !ok || FormatToPB(f) != p {
			t.Errorf("format %v: got %q, %v and back %v", p, f, ok, FormatToPB(f))
		}
	}
	for v := range modelv1.QuantType_name {
		p := modelv1.QuantType(v)
		q, ok := QuantFromPB(p)
		if !ok || QuantToPB(q) != p {
			t.Errorf("quant type %v: got %q, %v and back %v", p, q, ok, QuantToPB(q))
		}
	}
	for v := range modelv1.LineageSource_name {
		p := modelv1.LineageSource(v)
		s, ok := SourceFromPB(p)
		if !ok || SourceToPB(s) != p {
			t.Errorf("lineage source %v: got %q, %v and back %v", p, s, ok, SourceToPB(s))
		}
	}
	if f, ok := FormatFromPB(99); ok || f != "" {
		t.Errorf("format 99: got %q, %v; want refused", f, ok)
	}
	if q, ok := QuantFromPB(0); !ok || q != "" {
		t.Errorf("quant UNSPECIFIED: got %q, %v; want \"\"", q, ok)
	}
	if got := QuantToPB("nope"); got != modelv1.QuantType_QUANT_TYPE_UNSPECIFIED {
		t.Errorf("QuantToPB(nope): got %v, want UNSPECIFIED", got)
	}
}
