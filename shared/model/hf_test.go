package model

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/safetensors"
)

// copyModel copies a golden model directory to a temp dir, letting edit
// change config.json and the tensor list before they are written.
func copyModel(t *testing.T, name string, editConfig func(string) string, editTensors func([]safetensors.Tensor) []safetensors.Tensor) string {
	t.Helper()
	src := filepath.Join(modelsDir, name)
	if _, err := os.Stat(src); err != nil {
		t.Skip("golden model missing: ", err)
	}
	dst := t.TempDir()
	for _, f := range []string{"config.json", "generation_config.json", "tokenizer.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "config.json" && editConfig != nil {
			b = []byte(editConfig(string(b)))
		}
		if err := os.WriteFile(filepath.Join(dst, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sf, err := safetensors.Open(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	var ts []safetensors.Tensor
	for _, n := range sf.Names() {
		tn, _ := sf.Tensor(n)
		tn.Data = append([]byte(nil), tn.Data...)
		tn.Shape = append([]int(nil), tn.Shape...)
		ts = append(ts, tn)
	}
	if editTensors != nil {
		ts = editTensors(ts)
	}
	if err := safetensors.WriteFile(filepath.Join(dst, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dst
}

func dropTensor(name string) func([]safetensors.Tensor) []safetensors.Tensor {
	return func(ts []safetensors.Tensor) []safetensors.Tensor {
		out := ts[:0]
		for _, t := range ts {
			if t.Name != name {
				out = append(out, t)
			}
		}
		return out
	}
}

func editTensor(name string, f func(*safetensors.Tensor)) func([]safetensors.Tensor) []safetensors.Tensor {
	return func(ts []safetensors.Tensor) []safetensors.Tensor {
		for i := range ts {
			if ts[i].Name == name {
				f(&ts[i])
			}
		}
		return ts
	}
}

func TestLoadHFErrors(t *testing.T) {
	const f32, packed = "tiny-gqa-tied-f32", "tiny-gqa-packed"
	tests := []struct {
		name, model string
		cfg         func(string) string
		ts          func([]safetensors.Tensor) []safetensors.Tensor
		want        string
	}{
		{"missing tensor", f32, nil, dropTensor("model.layers.1.mlp.down_proj.weight"), "missing tensor model.layers.1.mlp.down_proj.weight"},
		{"missing norm", f32, nil, dropTensor("model.norm.weight"), "missing tensor model.norm.weight"},
		{"extra tensor", f32, nil, func(ts []safetensors.Tensor) []safetensors.Tensor {
			return append(ts, safetensors.Tensor{Name: "model.layers.7.extra", DType: "F32", Shape: []int{1}, Data: make([]byte, 4)})
		}, "unexpected tensors model.layers.7.extra"},
		{"wrong shape", f32, nil, editTensor("model.embed_tokens.weight", func(t *safetensors.Tensor) { t.Shape = []int{64, 600} }), "shape [64 600], want [600 64]"},
		{"wrong dtype", f32, nil, editTensor("model.norm.weight", func(t *safetensors.Tensor) { t.DType = "I32" }), "dtype I32"},
		{"unknown arch", f32, func(s string) string { return strings.Replace(s, "BitNetForCausalLM", "GPT2LMHeadModel", 1) }, nil, "GPT2LMHeadModel"},
		{"untied without head", f32, func(s string) string {
			return strings.Replace(s, `"tie_word_embeddings": true`, `"tie_word_embeddings": false`, 1)
		}, nil, "missing tensor lm_head.weight"},
		{"packed missing scale", packed, nil, dropTensor("model.layers.0.self_attn.q_proj.weight_scale"), "missing tensor model.layers.0.self_attn.q_proj.weight_scale"},
		{"packed float weight", packed, nil, editTensor("model.layers.0.mlp.up_proj.weight", func(t *safetensors.Tensor) { t.DType = "F32"; t.Shape = []int{t.Shape[0] / 4, t.Shape[1]} }), "want U8"},
		{"packed bad scale", packed, nil, editTensor("model.layers.1.self_attn.o_proj.weight_scale", func(t *safetensors.Tensor) { clear(t.Data) }), "weight_scale"},
		{"packed invalid code", packed, nil, editTensor("model.layers.0.self_attn.k_proj.weight", func(t *safetensors.Tensor) { t.Data[5] = 0xff }), "k_proj"},
		{"unknown quant method", packed, func(s string) string {
			return strings.Replace(s, `"quant_method": "bitnet"`, `"quant_method": "gptq"`, 1)
		}, nil, "gptq"},
		{"packed flag on float weights", f32, func(s string) string {
			// A later duplicate key wins in encoding/json.
			return strings.TrimSpace(s)[:len(strings.TrimSpace(s))-1] +
				`, "quantization_config": {"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "offline"}}`
		}, nil, "want U8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyModel(t, tt.model, tt.cfg, tt.ts)
			_, err := LoadHF(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
			if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), tt.want) { // the int8-head path
				t.Errorf("Load: got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestLoadHFFiles(t *testing.T) {
	dir := copyModel(t, "tiny-mha-untied-bf16", nil, nil)
	c, err := LoadConfigHF(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.EOSTokenIDs) != 1 || c.EOSTokenIDs[0] != 599 || c.BOSTokenID != 598 {
		t.Errorf("got bos %d eos %v, want 598 [599]", c.BOSTokenID, c.EOSTokenIDs)
	}
	// generation_config.json takes precedence over config.json.
	os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(`{"eos_token_id": [599, 3]}`), 0o644)
	if c, err = LoadConfigHF(dir); err != nil || len(c.EOSTokenIDs) != 2 {
		t.Errorf("got eos %v (err %v), want [599 3]", c.EOSTokenIDs, err)
	}
	os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(`{"eos_token_id": [6000]}`), 0o644)
	if _, err = LoadConfigHF(dir); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "generation_config.json") {
		t.Errorf("bad eos: got error %v, want ErrConfig naming generation_config.json", err)
	}
	os.Remove(filepath.Join(dir, "generation_config.json"))
	// Truncated weights.
	wpath := filepath.Join(dir, "model.safetensors")
	b, _ := os.ReadFile(wpath)
	os.WriteFile(wpath, b[:len(b)/2], 0o644)
	if _, err := LoadHF(dir); err == nil {
		t.Error("truncated safetensors: got nil error")
	}
	os.Remove(wpath)
	if _, err := LoadHF(dir); err == nil {
		t.Error("missing safetensors: got nil error")
	}
	if _, err := Load(filepath.Join(dir, "config.json")); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Errorf("Load of a plain file: got %v, want an error", err)
	}
	if _, err := Load(filepath.Join(dir, "nope")); err == nil {
		t.Error("Load of a missing path: got nil error")
	}
}
