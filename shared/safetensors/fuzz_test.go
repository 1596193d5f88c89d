package safetensors

import (
	"bytes"
	"testing"
)

func FuzzParse(f *testing.F) {
	var buf bytes.Buffer
	if err := Write(&buf, sampleTensors(), map[string]string{"format": "pt"}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(file(`{}`, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 { // per-input cost bound
			return
		}
		p, err := Parse(data)
		if err != nil {
			return
		}
		// Anything that parses must survive a write and parse back identically.
		var ts []Tensor
		for _, n := range p.Names() {
			tt, _ := p.Tensor(n)
			ts = append(ts, tt)
			if tt.DType == F32 || tt.DType == F16 || tt.DType == BF16 || tt.DType == F64 {
				if _, err := tt.Float32(); err != nil {
					t.Fatalf("Float32(%q): %v", n, err)
				}
			}
		}
		var out bytes.Buffer
		if err := Write(&out, ts, p.Metadata()); err != nil {
			t.Fatalf("Write of a parsed file: %v", err)
		}
		q, err := Parse(out.Bytes())
		if err != nil {
			t.Fatalf("Parse of rewritten file: %v", err)
		}
		for _, n := range p.Names() {
			a, _ := p.Tensor(n)
			b, ok := q.Tensor(n)
			if !ok || !bytes.Equal(a.Data, b.Data) || a.DType != b.DType {
				t.Fatalf("tensor %q changed in rewrite", n)
			}
		}
	})
}
