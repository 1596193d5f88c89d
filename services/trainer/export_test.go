package trainer

import (
	"context"
	"encoding/json"
	"testing"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	trainerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/trainer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// TestGGUFExport trains a 256-wide model (whole TQ blocks) for two steps
// and checks the second, GGUF version.
func TestGGUFExport(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg, _ := json.Marshal(map[string]any{
		"architectures": []string{"BitNetForCausalLM"}, "vocab_size": 600, "hidden_size": 256, "intermediate_size": 256,
		"num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64,
		"hidden_act": "relu2", "tie_word_embeddings": true,
	})
	req := e.scratchRequest(t, 2, "wide")
	req.Model.Init = &trainerv1.ModelSpec_ConfigJson{ConfigJson: string(cfg)}
	req.Hyperparameters.BatchSize, req.Hyperparameters.SeqLen = 2, 16
	req.Output.ExportGguf = modelv1.QuantType_QUANT_TYPE_TQ1_0
	resp, err := e.client.CreateJob(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	j := e.watch(t, resp.GetJob().GetJobId(), nil)
	mustSucceed(t, j)
	if len(j.GetResults()) != 2 || j.GetResults()[1].GetVersion() != 2 {
		t.Fatalf("results: got %v, want wide@1 and wide@2", j.GetResults())
	}
	v, err := e.store.Resolve(ctx, "wide@2")
	if err != nil {
		t.Fatal(err)
	}
	if v.Metadata.Format != registry.FormatGGUF || v.Metadata.QuantType != registry.QuantTQ10 {
		t.Errorf("gguf version: got format %q quant %q", v.Metadata.Format, v.Metadata.QuantType)
	}
	if p := v.Metadata.Lineage.Parent; p == nil || p.Version != 1 {
		t.Errorf("gguf lineage parent: got %v, want wide@1", p)
	}
	dir := e.materialise(t, v)
	if _, _, err := model.LoadWeights(dir + "/model.gguf"); err != nil {
		t.Errorf("load gguf export: %v", err)
	}
}
