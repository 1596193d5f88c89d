package quantizer

import (
	"testing"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

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
