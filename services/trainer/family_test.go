package trainer

import (
	"context"
	"encoding/json"
	"testing"

	trainerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/trainer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// TestFamilyScratchThenFineTune trains a Llama-style BitNet model (the
// HF1BitLLM / Falcon3 family) and a 1bitLLM one from scratch, fine-tunes
// the first: each version is stored in the family's own Hugging Face format
// and loads as that family.
func TestFamilyScratchThenFineTune(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, fam := range []struct {
		name string
		keys map[string]any
		want model.Family
	}{
		{"llama", map[string]any{"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama", "hidden_act": "silu",
			"quantization_config": map[string]any{"quant_method": "bitnet"}}, model.FamilyLlama},
		{"onebit", map[string]any{"architectures": []string{"BitnetForCausalLM"}, "model_type": "llama", "hidden_act": "silu",
			"input_bits": 8, "weight_bits": 1}, model.FamilyBitNetB158},
	} {
		var cfg map[string]any
		if err := json.Unmarshal([]byte(tinyConfig()), &cfg); err != nil {
			t.Fatal(err)
		}
		for k, v := range fam.keys {
			cfg[k] = v
		}
		b, _ := json.Marshal(cfg)
		req := e.scratchRequest(t, 3, fam.name)
		req.Model.Init = &trainerv1.ModelSpec_ConfigJson{ConfigJson: string(b)}
		resp, err := e.client.CreateJob(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", fam.name, err)
		}
		mustSucceed(t, e.watch(t, resp.GetJob().GetJobId(), nil))
		v, err := e.store.Resolve(ctx, fam.name+"@1")
		if err != nil {
			t.Fatal(err)
		}
		w, _, err := model.LoadWeights(e.materialise(t, v))
		if err != nil {
			t.Fatal(err)
		}
		if w.Config.Family() != fam.want {
			t.Errorf("%s: trained version loads as %s, want %s", fam.name, w.Config.Family(), fam.want)
		}
	}
	ft := e.scratchRequest(t, 2, "")
	ft.Model = &trainerv1.ModelSpec{Init: &trainerv1.ModelSpec_Parent{Parent: "llama"}}
	resp, err := e.client.CreateJob(ctx, ft)
	if err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, e.watch(t, resp.GetJob().GetJobId(), nil))
	v, err := e.store.Resolve(ctx, "llama@2")
	if err != nil {
		t.Fatal(err)
	}
	w, _, err := model.LoadWeights(e.materialise(t, v))
	if err != nil || w.Config.Family() != model.FamilyLlama {
		t.Errorf("fine-tuned llama: family %v, err %v", w.Config.Family(), err)
	}
}
