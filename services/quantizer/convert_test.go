package quantizer

import (
	"math"
	"strconv"
	"testing"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
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

func TestReportGGUFTypes(t *testing.T) {
	rep := Report{Linears: []LinearReport{
		{Name: "model.layers.0.mlp.down_proj.weight", GGUF: model.TensorChoice{Name: "blk.0.ffn_down.weight"}},
		{Name: "model.layers.0.mlp.up_proj.weight", GGUF: model.TensorChoice{Name: "blk.0.ffn_up.weight"}},
	}}
	if got := typeChoiceToPB(rep.Linears[0].GGUF, rep.GGUFArch != ""); got != nil {
		t.Errorf("before the plan: got %v, want nil", got)
	}
	rep.addPlan(model.GGUFPlan{Arch: model.GGUFArchBitNetB158, Tensors: []model.TensorChoice{
		{Name: "blk.0.ffn_up.weight", Type: gguf.TQ2_0},
		{Name: "blk.0.ffn_down.weight", Type: gguf.I2_S, Reason: "width 8640 ..."},
	}})
	got := typeChoiceToPB(rep.Linears[0].GGUF, rep.GGUFArch != "")
	if got.GetTensor() != "blk.0.ffn_down.weight" || got.GetType() != "I2_S" || got.GetReason() != "width 8640 ..." {
		t.Errorf("down: got %v", got)
	}
	if got := typeChoiceToPB(rep.Linears[1].GGUF, true); got.GetType() != "TQ2_0" || got.GetReason() != "" {
		t.Errorf("up: got %v", got)
	}
	if rep.GGUFArch != "bitnet-b1.58" {
		t.Errorf("arch %q", rep.GGUFArch)
	}
	if tgt, err := targetFromPB(modelv1.QuantType_QUANT_TYPE_I2_S); err != nil || targetToPB(tgt) != modelv1.QuantType_QUANT_TYPE_I2_S || ggufType(tgt) != gguf.I2_S {
		t.Errorf("I2_S target: %v, %v", tgt, err)
	}
}
