package model

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
)

const validConfig = `{"architectures": ["BitNetForCausalLM"], "vocab_size": 600, "hidden_size": 64,
 "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
 "max_position_embeddings": 512, "rope_theta": 500000.0, "rms_norm_eps": 1e-05, "hidden_act": "relu2",
 "tie_word_embeddings": true, "bos_token_id": 598, "eos_token_id": 599,
 "rope_scaling": null, "attention_bias": false}`

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(validConfig))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Architecture: ArchBitNet, VocabSize: 600, HiddenSize: 64, IntermediateSize: 128,
		NumLayers: 2, NumHeads: 4, NumKVHeads: 2, HeadDim: 16, MaxPositions: 512, RopeTheta: 500000,
		RMSNormEps: 1e-5, HiddenAct: "relu2", TieWordEmbeddings: true, BOSTokenID: 598, EOSTokenIDs: []int{599}}
	if c.String() != want.String() {
		t.Errorf("got %+v, want %+v", c, want)
	}
}

func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(`{"model_type": "bitnet", "vocab_size": 10, "hidden_size": 8,
		"intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "eos_token_id": [3, 4]}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Architecture != ArchBitNet || c.NumKVHeads != 2 || c.HeadDim != 4 || c.RopeTheta != 500000 ||
		c.RMSNormEps != 1e-5 || c.HiddenAct != "relu2" || c.MaxPositions != 2048 || c.BOSTokenID != -1 ||
		len(c.EOSTokenIDs) != 2 || c.EOSTokenIDs[1] != 4 {
		t.Errorf("got %+v, want BitNet defaults", c)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name, edit, want string
	}{
		{"not json", "{", "config.json"},
		{"unknown arch", `"architectures": ["LlamaForCausalLM"]`, "LlamaForCausalLM"},
		{"missing hidden", `"hidden_size": null`, "hidden_size"},
		{"negative layers", `"num_hidden_layers": -1`, "num_hidden_layers"},
		{"fractional vocab", `"vocab_size": 600.5`, "vocab_size"},
		{"string vocab", `"vocab_size": "600"`, "vocab_size"},
		{"kv heads", `"num_key_value_heads": 3`, "num_key_value_heads"},
		{"odd head dim", `"head_dim": 15`, "head_dim"},
		{"activation", `"hidden_act": "gelu_new"`, "hidden_act"},
		{"rope theta", `"rope_theta": -1`, "rope_theta"},
		{"eps", `"rms_norm_eps": -1`, "rms_norm_eps"},
		{"eos range", `"eos_token_id": [599, 600]`, "eos_token_id"},
		{"bos range", `"bos_token_id": 1000`, "bos_token_id"},
		{"huge", `"hidden_size": 1e12`, "hidden_size"},
		{"rope scaling", `"rope_scaling": {"type": "dynamic", "factor": 2}`, "rope_scaling"},
		{"attention bias", `"attention_bias": true`, "attention_bias"},
		// Issue 10: shapes whose product no machine holds (each within
		// MaxDim) and block counts beyond MaxLayers are refused by the
		// check that loading, quantizing and training share.
		{"huge product", `"hidden_size": 16777216, "intermediate_size": 16777216, "vocab_size": 16777216, "num_attention_heads": 4096`, "parameters"},
		{"too many layers", `"num_hidden_layers": 1048576`, "num_hidden_layers"},
	}
	for _, tt := range tests {
		data := validConfig
		if tt.edit != "{" {
			// Later keys win in encoding/json, so the edit overrides.
			data = strings.TrimSuffix(validConfig, "}") + ", " + tt.edit + "}"
		} else {
			data = "{"
		}
		_, err := ParseConfig([]byte(data))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got error %v, want ErrConfig naming %q", tt.name, err, tt.want)
		}
	}
}

// FuzzParseConfig checks that any config.json either parses into a valid
// Config or fails with ErrConfig, never panicking.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(validConfig))
	f.Add([]byte(`{"model_type": "bitnet", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}`))
	// Every family's config.json (the synthetic checkpoints').
	files, _ := filepath.Glob(filepath.Join(modelsDir, "*", "config.json"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 { // per-input cost bound
			return
		}
		c, err := ParseConfig(data)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v is not ErrConfig", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed config does not validate: %v", err)
		}
	})
}

// TestParseFamilyConfigs parses the family configs the way their
// checkpoints write them (Falcon3, Qwen3, Gemma3 keys) and checks what the
// forward pass reads from them.
func TestParseFamilyConfigs(t *testing.T) {
	const shape = `"vocab_size": 100, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 3, "num_attention_heads": 4`
	tests := []struct {
		name, json string
		check      func(Config) bool
	}{
		{"1bitLLM", `{"architectures": ["BitnetForCausalLM"], "model_type": "llama", "hidden_act": "silu", "input_bits": 8, "weight_bits": 1, ` + shape + `}`,
			func(c Config) bool {
				return c.Family() == FamilyBitNetB158 && c.SubNorms() && c.HiddenAct == ActSiLU && c.RopeTheta == 10000 && !c.IsEmbedding()
			}},
		{"falcon3", `{"architectures": ["LlamaForCausalLM"], "head_dim": 32, "rope_theta": 1000042, "is_bitnet_config": true, "quantization_config": {"modules_to_not_convert": ["lm_head"], "quant_method": "bitnet"}, ` + shape + `}`,
			func(c Config) bool {
				return c.Family() == FamilyLlama && !c.SubNorms() && c.QDim() == 128 && c.RopeTheta == 1000042 && !c.ProjNorms && c.RMSNormEps == 1e-6
			}},
		{"llama use_rms_norm + llama3 rope", `{"architectures": ["LlamaForCausalLM"], "quantization_config": {"quant_method": "bitnet", "use_rms_norm": true, "rms_norm_eps": 1e-5}, "rope_scaling": {"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 8192}, ` + shape + `}`,
			func(c Config) bool {
				return c.ProjNorms && c.ProjEps() == 1e-5 && c.RopeScaling != nil && c.RopeScaling.Type == "llama3" && c.RopeScaling.OriginalMaxPosition == 8192
			}},
		{"qwen3 bare", `{"architectures": ["Qwen3Model"], "model_type": "qwen3", "head_dim": 128, "use_sliding_window": false, ` + shape + `}`,
			func(c Config) bool {
				return c.Family() == FamilyQwen3 && c.Architecture == ArchQwen3 && c.QKNorm() && c.HeadDim == 128 && c.Pooling == PoolLast && c.NormalizeEmbeddings
			}},
		{"gemma3 layer_types", `{"model_type": "gemma3_text", "query_pre_attn_scalar": 256, "sliding_window": 512, "rope_local_base_freq": 10000, "layer_types": ["sliding_attention", "sliding_attention", "full_attention"], "attn_logit_softcapping": null, ` + shape + `}`,
			func(c Config) bool {
				return c.Family() == FamilyGemma3 && c.HeadDim == 256 && c.HiddenAct == ActGELUTanh && c.TieWordEmbeddings && c.SandwichNorms() &&
					c.Sliding(0) && c.Sliding(1) && !c.Sliding(2) && c.AttnScale() == float32(1.0/16) && c.NormOffset() == 1 && c.EmbedScale() == 8
			}},
		{"gemma3 pattern", `{"model_type": "gemma3_text", "sliding_window_pattern": 2, ` + shape + `}`,
			func(c Config) bool { return c.Sliding(0) && !c.Sliding(1) && c.Sliding(2) && c.SlidingWindow == 4096 }},
		{"transformers 5 rope_parameters", `{"model_type": "gemma3_text", "rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 500000}, "sliding_attention": {"rope_type": "default", "rope_theta": 10000}}, ` + shape + `}`,
			func(c Config) bool { return c.RopeTheta == 500000 && c.RopeLocalTheta == 10000 }},
	}
	for _, tc := range tests {
		c, err := ParseConfig([]byte(tc.json))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !tc.check(c) {
			t.Errorf("%s: got %v", tc.name, c)
		}
	}
	bad := []struct{ name, json, want string }{
		{"llama without bitnet", `{"architectures": ["LlamaForCausalLM"], ` + shape + `}`, "full-precision"},
		{"other quant method", `{"architectures": ["LlamaForCausalLM"], "quantization_config": {"quant_method": "gptq"}, ` + shape + `}`, "gptq"},
		{"1bitLLM 2-bit weights", `{"architectures": ["BitnetForCausalLM"], "weight_bits": 2, ` + shape + `}`, "weight_bits"},
		{"gemma softcap", `{"model_type": "gemma3_text", "final_logit_softcapping": 30, ` + shape + `}`, "final_logit_softcapping"},
		{"layer_types length", `{"model_type": "gemma3_text", "layer_types": ["full_attention"], ` + shape + `}`, "layer_types"},
		{"layer type", `{"model_type": "gemma3_text", "layer_types": ["a", "b", "c"], ` + shape + `}`, "layer_types[0]"},
		{"qwen sliding", `{"model_type": "qwen3", "use_sliding_window": true, ` + shape + `}`, "use_sliding_window"},
		{"yarn", `{"model_type": "qwen3", "rope_scaling": {"rope_type": "yarn", "factor": 4}, ` + shape + `}`, "yarn"},
		{"llama3 factors", `{"architectures": ["LlamaForCausalLM"], "quantization_config": {"quant_method": "bitnet"}, "rope_scaling": {"rope_type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 1}, ` + shape + `}`, "low_freq_factor"},
		{"unknown architecture", `{"architectures": ["MistralForCausalLM"], ` + shape + `}`, "MistralForCausalLM"},
	}
	for _, tc := range bad {
		_, err := ParseConfig([]byte(tc.json))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want ErrConfig naming %q", tc.name, err, tc.want)
		}
	}
}

func TestParseKVType(t *testing.T) {
	tests := []struct {
		in   string
		want KVType
		ok   bool
	}{{"f32", KVFloat32, true}, {"f16", KVFloat16, true}, {"F16", 0, false}, {"", 0, false}, {"q8", 0, false}}
	for _, tc := range tests {
		got, err := ParseKVType(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseKVType(%q): got %v, %v; want %v, ok %t", tc.in, got, err, tc.want, tc.ok)
		}
		if tc.ok && got.String() != tc.in {
			t.Errorf("ParseKVType(%q).String() = %q", tc.in, got.String())
		}
	}
}

func TestParseTernaryType(t *testing.T) {
	tests := []struct {
		in   string
		want gguf.Type
		ok   bool
	}{{"tq2_0", gguf.TQ2_0, true}, {"TQ1_0", gguf.TQ1_0, true}, {"q8_0", 0, false}, {"", 0, false}}
	for _, tc := range tests {
		got, err := ParseTernaryType(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseTernaryType(%q): got %v, %v; want %v, ok %t", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
