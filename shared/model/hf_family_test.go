package model

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/safetensors"
)

// editedCopy copies the golden model dir into a temporary directory with
// its tensors passed through edit (return false to drop one) and its
// config.json keys changed by cfg (nil value: delete the key).
func editedCopy(t *testing.T, name string, edit func(*safetensors.Tensor) bool, cfg map[string]any) string {
	t.Helper()
	src := filepath.Join(modelsDir, name)
	if _, err := os.Stat(src); err != nil {
		t.Skip("no golden model:", err)
	}
	dst := t.TempDir()
	ck, err := safetensors.OpenCheckpoint(src)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	var ts []safetensors.Tensor
	for _, n := range ck.Names() {
		tn, _ := ck.Tensor(n)
		tn.Data = append([]byte(nil), tn.Data...)
		if edit == nil || edit(&tn) {
			ts = append(ts, tn)
		}
	}
	if err := safetensors.WriteFile(filepath.Join(dst, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	b, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for k, v := range cfg {
		if v == nil {
			delete(raw, k)
		} else {
			raw[k] = v
		}
	}
	b, _ = json.Marshal(raw)
	if err := os.WriteFile(filepath.Join(dst, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestLoadHFFamilyErrors: a checkpoint that does not match its family's
// layout fails with a message naming what is wrong.
func TestLoadHFFamilyErrors(t *testing.T) {
	drop := func(suffix string) func(*safetensors.Tensor) bool {
		return func(tn *safetensors.Tensor) bool { return !strings.HasSuffix(tn.Name, suffix) }
	}
	tests := []struct {
		name, model string
		edit        func(*safetensors.Tensor) bool
		cfg         map[string]any
		want        string
		is          error
	}{
		{"1bitLLM without ffn_layernorm", "tiny-bitnet-b158-fp16", drop("layers.1.mlp.ffn_layernorm.weight"), nil,
			"model.layers.1.mlp.ffn_layernorm.weight", ErrWeights},
		{"1bitLLM loaded as 2B4T", "tiny-bitnet-b158-fp16", nil, map[string]any{"architectures": []string{"BitNetForCausalLM"}},
			"attn_sub_norm", ErrWeights},
		{"llama with sub-norms", "tiny-falcon3-bitlinear", nil, map[string]any{"architectures": []string{"BitNetForCausalLM"}, "quantization_config": nil},
			"attn_sub_norm", ErrWeights},
		{"llama without quantization_config", "tiny-falcon3-bitlinear", nil, map[string]any{"quantization_config": nil},
			"full-precision", ErrConfig},
		{"packed scale missing", "tiny-falcon3-bitlinear", drop("layers.0.mlp.up_proj.weight_scale"), nil,
			"up_proj.weight_scale", ErrWeights},
		{"qwen3 without projection norms", "tiny-qwen3-embed", drop(".norm.weight"), nil,
			"full-precision", ErrConfig},
		{"qwen3 missing one projection norm", "tiny-qwen3-embed", drop("layers.1.mlp.down_proj.norm.weight"), nil,
			"layers.1.mlp.down_proj.norm.weight", ErrWeights},
		{"gemma3 missing a sandwich norm", "tiny-gemma3-embed", drop("layers.2.post_feedforward_layernorm.weight"), nil,
			"layers.2.post_feedforward_layernorm.weight", ErrWeights},
		{"gemma3 q_norm width", "tiny-gemma3-embed", func(tn *safetensors.Tensor) bool {
			if strings.HasSuffix(tn.Name, "layers.0.self_attn.q_norm.weight") {
				tn.Shape, tn.Data = []int{tn.Shape[0] / 2}, tn.Data[:len(tn.Data)/2]
			}
			return true
		}, nil, "q_norm.weight has shape", ErrWeights},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := editedCopy(t, tc.model, tc.edit, tc.cfg)
			_, err := LoadHF(dir)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %v naming %q", err, tc.is, tc.want)
			}
		})
	}
}

// TestLoadHFUseRMSNormOnes: with quantization_config.use_rms_norm and no
// stored norm weights, the per-projection norms are ones, as transformers
// initialises them.
func TestLoadHFUseRMSNormOnes(t *testing.T) {
	dir := editedCopy(t, "tiny-falcon3-bitlinear", nil, map[string]any{
		"quantization_config": map[string]any{"quant_method": "bitnet", "use_rms_norm": true}})
	w, err := LoadHF(dir)
	if err != nil {
		t.Fatal(err)
	}
	pn := w.Layers[1].ProjNorm[LinDown]
	if !w.Config.ProjNorms || len(pn) != w.Config.IntermediateSize || pn[0] != 1 || pn[len(pn)-1] != 1 {
		t.Errorf("got ProjNorms %v, down_proj norm %d floats starting %v", w.Config.ProjNorms, len(pn), pn[:1])
	}
}

func TestEmbeddingSettingsErrors(t *testing.T) {
	dir := editedCopy(t, "tiny-qwen3-embed", nil, nil)
	for _, f := range []string{"tokenizer.json", "modules.json"} {
		b, err := os.ReadFile(filepath.Join(modelsDir, "tiny-qwen3-embed", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.json"), []byte(`[{"path": "../x", "type": "sentence_transformers.models.Pooling"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadHF(dir); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "leaves the model directory") {
		t.Errorf("pooling path outside: got %v", err)
	}
	os.MkdirAll(filepath.Join(dir, "p"), 0o755)
	os.WriteFile(filepath.Join(dir, "p", "config.json"), []byte(`{"pooling_mode_cls_token": true}`), 0o644)
	os.WriteFile(filepath.Join(dir, "modules.json"), []byte(`[{"path": "p", "type": "sentence_transformers.models.Pooling"}]`), 0o644)
	if _, err := LoadHF(dir); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "last-token and mean") {
		t.Errorf("cls pooling: got %v", err)
	}
	os.WriteFile(filepath.Join(dir, "p", "config.json"), []byte(`{"pooling_mode_mean_tokens": true}`), 0o644)
	w, err := LoadHF(dir)
	if err != nil || w.Config.Pooling != PoolMean || w.Config.NormalizeEmbeddings {
		t.Errorf("mean pooling without Normalize: got %v, err %v", w.Config, err)
	}
}
