package quantizer

import (
	"math"
	"strconv"
	"testing"

	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
)

// TestRequestFromPBAsGiven: numbers reach validation as sent, so a
// rejected value is reported as given (4294967295 threads, not 65536).
func TestRequestFromPBAsGiven(t *testing.T) {
	if strconv.IntSize < 64 {
		t.Skip("a 32-bit int saturates")
	}
	r, err := requestFromPB(&quantizerv1.CreateJobRequest{
		Source:      &quantizerv1.Source{Source: &quantizerv1.Source_Model{Model: "tiny"}},
		Threads:     math.MaxUint32,
		Calibration: &quantizerv1.Calibration{MaxTokens: math.MaxUint32, ContextLength: math.MaxUint32 - 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Threads != math.MaxUint32 || r.Calibration.MaxTokens != math.MaxUint32 || r.Calibration.ContextLength != math.MaxUint32-1 {
		t.Errorf("got threads %d, calibration %d/%d; want the values sent", r.Threads, r.Calibration.MaxTokens, r.Calibration.ContextLength)
	}
}
