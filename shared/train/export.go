package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bitnet-mesh/bitnet-mesh/shared/half"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/safetensors"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// packedLinearClass is the transformers linear class a packed export of c
// uses: autobitlinear (weight_scale = s, multiplied) for BitNet 2B4T's
// layout, bitlinear (weight_scale = 1/s, divided) for the llama family, as
// HF1BitLLM and Falcon3 checkpoints store it.
func packedLinearClass(c model.Config) string {
	if c.Family() == model.FamilyLlama {
		return ternary.HFBitLinear
	}
	return ternary.HFAutoBitLinear
}

// hfConfigJSON renders c with its family's Hugging Face config.json keys
// (BitNetForCausalLM, 1bitLLM's BitnetForCausalLM, LlamaForCausalLM). A
// quantised model gets quantization_config: mode "online" when the
// safetensors hold master weights that loaders ternarise, "offline" when its
// linears are stored packed (uint8 + weight_scale). 1bitLLM checkpoints hold
// masters and no quantization_config (their custom BitLinear ternarises).
func hfConfigJSON(c model.Config, dtype string, quant, packed bool) []byte {
	arch, mt := model.ArchBitNet, "bitnet"
	switch c.Family() {
	case model.FamilyBitNetB158:
		arch, mt = model.ArchBitNetB158, "llama"
	case model.FamilyLlama:
		arch, mt = model.ArchLlama, "llama"
	}
	m := map[string]any{
		"architectures":           []string{arch},
		"model_type":              mt,
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
	switch {
	case c.Family() == model.FamilyBitNetB158:
		m["input_bits"], m["weight_bits"] = 8, 1
	case quant || c.Family() == model.FamilyLlama:
		// A LlamaForCausalLM without quantization_config would be a float
		// model: a full-precision llama run exports masters marked online.
		mode, class := "online", ternary.HFAutoBitLinear
		if packed {
			mode, class = "offline", packedLinearClass(c)
		}
		m["quantization_config"] = map[string]string{
			"quant_method": "bitnet", "linear_class": class, "quantization_mode": mode,
		}
	}
	b, _ := json.MarshalIndent(m, "", "  ") // maps of plain values always marshal
	return append(b, '\n')
}

// Export writes a Hugging Face directory that model.LoadHF loads:
// config.json, model.safetensors with the master weights (dtype "F32" or
// "BF16") and, when tokenizerPath is not empty, a copy of tokenizer.json.
func (t *Trainer) Export(dir, dtype, tokenizerPath string) error {
	return t.export(dir, dtype, tokenizerPath, false)
}

// ExportPacked writes the model in the pre-quantised Hugging Face format of
// microsoft/bitnet-b1.58-2B-4T (quantization_config quant_method bitnet,
// linear_class autobitlinear, quantization_mode offline): every BitLinear
// weight is ternarised exactly as the trainer's forward pass does
// (ternary.Quantize: absmean per tensor), stored as uint8 [out/4, in]
// (ternary.Matrix.HFPacked) plus a one-element F32 weight_scale (the scale
// itself, as AutoBitLinear multiplies by it). The embedding, the norms and an
// untied lm_head are stored in dtype ("F32" or "BF16"), as Export does.
// model.LoadHF reads it into the same ternary matrices as the master export,
// so both give bit-identical logits when dtype is F32. A full-precision run
// has no ternary weights to export: that is an error. Every linear's output
// dimension must be a multiple of 4 (the packed layout has out/4 rows).
func (t *Trainer) ExportPacked(dir, dtype, tokenizerPath string) error {
	if t.opt.FullPrec {
		return fmt.Errorf("%w: packed export of a full-precision run (it was not trained with ternary weights; use Export)", ErrOptions)
	}
	if t.cfg.Family() == model.FamilyBitNetB158 {
		return fmt.Errorf("%w: the bitnet-b1.58 (1bitLLM) format stores master weights; use Export", ErrOptions)
	}
	return t.export(dir, dtype, tokenizerPath, true)
}

func (t *Trainer) export(dir, dtype, tokenizerPath string, packed bool) error {
	if dtype != "F32" && dtype != "BF16" {
		return fmt.Errorf("train: export dtype %q is not supported (want F32 or BF16)", dtype)
	}
	ts, err := t.exportTensors(dtype, packed)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	torch := map[string]string{"F32": "float32", "BF16": "bfloat16"}[dtype]
	if err := writeFileAtomic(filepath.Join(dir, "config.json"), hfConfigJSON(t.cfg, torch, !t.opt.FullPrec, packed)); err != nil {
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

// exportTensors converts the parameters into safetensors tensors: floats in
// dtype, and with packed the BitLinear weights as HF packed uint8 plus
// weight_scale.
func (t *Trainer) exportTensors(dtype string, packed bool) ([]safetensors.Tensor, error) {
	e := t.eng
	ts := make([]safetensors.Tensor, 0, len(e.lay.specs)+7*t.cfg.NumLayers)
	for k, s := range e.lay.specs {
		if s.N == 0 { // a sub-norm slot of a family without sub-norms
			continue
		}
		v := e.params[s.Off : s.Off+s.N]
		if packed && isLinear(k, t.cfg.NumLayers) {
			pt, err := packLinear(s, v, packedLinearClass(t.cfg))
			if err != nil {
				return nil, err
			}
			ts = append(ts, pt...)
			continue
		}
		ts = append(ts, floatTensor(s.Name, s.Shape, v, dtype))
	}
	return ts, nil
}

// isLinear reports whether spec k of the layout is a BitLinear weight (a
// layer tensor from q_proj on; see newLayout).
func isLinear(k, layers int) bool {
	li, ti := (k-1)/tensorsPerLayer, (k-1)%tensorsPerLayer
	return k > 0 && li < layers && ti >= tQ
}

// packLinear ternarises one BitLinear weight as the forward pass does and
// returns its packed weight and weight_scale tensors.
func packLinear(s tensorSpec, v []float32, class string) ([]safetensors.Tensor, error) {
	out, in := s.Shape[0], s.Shape[1]
	if out%4 != 0 {
		return nil, fmt.Errorf("train: packed export: %s has %d output rows, want a multiple of 4", s.Name, out)
	}
	m, err := ternary.Quantize(out, in, v)
	if err != nil {
		return nil, fmt.Errorf("train: packed export: %s: %w", s.Name, err)
	}
	codes, err := m.HFPacked()
	if err != nil {
		return nil, fmt.Errorf("train: packed export: %s: %w", s.Name, err)
	}
	ws, err := ternary.ScaleToHF(m.Scale, class)
	if err != nil {
		return nil, fmt.Errorf("train: packed export: %s: %w", s.Name, err)
	}
	return []safetensors.Tensor{
		{Name: s.Name, DType: safetensors.U8, Shape: []int{out / 4, in}, Data: codes},
		{Name: strings.TrimSuffix(s.Name, ".weight") + ".weight_scale", DType: safetensors.F32, Shape: []int{1}, Data: f32Bytes([]float32{ws})},
	}, nil
}

// floatTensor encodes v as an F32 or BF16 tensor.
func floatTensor(name string, shape []int, v []float32, dtype string) safetensors.Tensor {
	if dtype != "BF16" {
		return safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: shape, Data: f32Bytes(v)}
	}
	b := make([]byte, 2*len(v))
	for i, x := range v {
		h := half.ToBFloat16(x)
		b[2*i], b[2*i+1] = byte(h), byte(h>>8)
	}
	return safetensors.Tensor{Name: name, DType: safetensors.BF16, Shape: shape, Data: b}
}

// writeFileAtomic writes data to a temporary file beside path and renames it.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	err = tmp.Chmod(0o644) // CreateTemp makes 0600; model files are shared
	if err == nil {
		_, err = tmp.Write(data)
	}
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
