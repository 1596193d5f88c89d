package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bitnet-mesh/bitnet-mesh/shared/half"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/safetensors"
)

// hfConfigJSON renders c with Hugging Face BitNet config.json keys. A
// quantised model gets quantization_config in online mode: its safetensors
// hold master weights that loaders ternarise.
func hfConfigJSON(c model.Config, dtype string, quant bool) []byte {
	m := map[string]any{
		"architectures":           []string{model.ArchBitNet},
		"model_type":              "bitnet",
		"vocab_size":              c.VocabSize,
		"hidden_size":             c.HiddenSize,
		"intermediate_size":       c.IntermediateSize,
		"num_hidden_layers":       c.NumLayers,
		"num_attention_heads":     c.NumHeads,
		"num_key_value_heads":     c.NumKVHeads,
		"head_dim":                c.HeadDim,
		"max_position_embeddings": c.MaxPositions,
		"rope_theta":              c.RopeTheta,
		"rms_norm_eps":            c.RMSNormEps,
		"hidden_act":              c.HiddenAct,
		"tie_word_embeddings":     c.TieWordEmbeddings,
		"torch_dtype":             dtype,
	}
	if c.BOSTokenID >= 0 {
		m["bos_token_id"] = c.BOSTokenID
	}
	switch len(c.EOSTokenIDs) {
	case 0:
	case 1:
		m["eos_token_id"] = c.EOSTokenIDs[0]
	default:
		m["eos_token_id"] = c.EOSTokenIDs
	}
	if quant {
		m["quantization_config"] = map[string]string{
			"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "online",
		}
	}
	b, _ := json.MarshalIndent(m, "", "  ") // maps of plain values always marshal
	return append(b, '\n')
}

// Export writes a Hugging Face directory that model.LoadHF loads:
// config.json, model.safetensors with the master weights (dtype "F32" or
// "BF16") and, when tokenizerPath is not empty, a copy of tokenizer.json.
func (t *Trainer) Export(dir, dtype, tokenizerPath string) error {
	if dtype != "F32" && dtype != "BF16" {
		return fmt.Errorf("train: export dtype %q is not supported (want F32 or BF16)", dtype)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	e := t.eng
	ts := make([]safetensors.Tensor, 0, len(e.lay.specs))
	for _, s := range e.lay.specs {
		v := e.params[s.Off : s.Off+s.N]
		ten := safetensors.Tensor{Name: s.Name, DType: safetensors.F32, Shape: s.Shape}
		if dtype == "BF16" {
			b := make([]byte, 2*len(v))
			for i, x := range v {
				h := half.ToBFloat16(x)
				b[2*i], b[2*i+1] = byte(h), byte(h>>8)
			}
			ten.DType, ten.Data = safetensors.BF16, b
		} else {
			ten.Data = f32Bytes(v)
		}
		ts = append(ts, ten)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	torch := map[string]string{"F32": "float32", "BF16": "bfloat16"}[dtype]
	if err := writeFileAtomic(filepath.Join(dir, "config.json"), hfConfigJSON(t.cfg, torch, !t.opt.FullPrec)); err != nil {
		return err
	}
	if tokenizerPath != "" {
		b, err := os.ReadFile(tokenizerPath)
		if err != nil {
			return fmt.Errorf("train: %w", err)
		}
		if err := writeFileAtomic(filepath.Join(dir, "tokenizer.json"), b); err != nil {
			return err
		}
	}
	return nil
}

// writeFileAtomic writes data to a temporary file beside path and renames it.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("train: write %s: %w", path, err)
	}
	return nil
}
