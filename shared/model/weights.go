// Package model is the BitNet b1.58 inference engine: the neutral in-memory
// model (Config, Weights) that every checkpoint format fills, the loaders for
// Hugging Face directories (and GGUF files, see gguf*.go), and the forward pass
// of BitNetForCausalLM with a KV cache that serves many sequences at once.
//
// Every BitLinear layer quantises its input per token to int8 (absmax) and
// multiplies it with ternary weights through package kernels; everything else
// (RMSNorm, RoPE, attention, the output head) runs in float32 like the Hugging
// Face reference (the head optionally in int8, see WithHeadInt8).
//
// Serving: Model.Forward takes a batch of Steps (one per Sequence: a prompt
// prefill or a decode token) and runs all their tokens through each BitLinear
// as one GEMM; attention runs per sequence over its KV cache (fp32 or fp16,
// growing in chunks up to max_position_embeddings).
package model

import (
	"errors"
	"fmt"
	"math"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"

	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// ErrWeights reports a missing, extra or malformed weight tensor.
var ErrWeights = errors.New("model: bad weights")

// Layer is one decoder block. Norm vectors are RMSNorm weights; the seven
// linears are ternary with their per-tensor scale (W ~= T*Scale), shaped
// out x in like PyTorch's nn.Linear.weight.
type Layer struct {
	AttnNorm    []float32 // input_layernorm, HiddenSize
	AttnSubNorm []float32 // self_attn.attn_sub_norm, QDim
	FFNNorm     []float32 // post_attention_layernorm, HiddenSize
	FFNSubNorm  []float32 // mlp.ffn_sub_norm, IntermediateSize

	Q    *ternary.Matrix // QDim x HiddenSize
	K    *ternary.Matrix // KVDim x HiddenSize
	V    *ternary.Matrix // KVDim x HiddenSize
	O    *ternary.Matrix // HiddenSize x QDim
	Gate *ternary.Matrix // IntermediateSize x HiddenSize
	Up   *ternary.Matrix // IntermediateSize x HiddenSize
	Down *ternary.Matrix // HiddenSize x IntermediateSize
}

// Weights is a whole model in memory, independent of the file format.
type Weights struct {
	Config Config
	Embed  []float32 // VocabSize*HiddenSize, row-major by token
	Layers []Layer
	Norm   []float32 // model.norm, HiddenSize
	Head   []float32 // lm_head VocabSize*HiddenSize; nil when TieWordEmbeddings
}

// Validate checks every tensor's presence and shape against the Config.
func (w *Weights) Validate() error { return w.validate(nil) }

// validate is Validate where a loader may have quantised the head straight
// to head8 (see readGGUF): then the float32 head is absent, and so is the
// embedding when tied.
func (w *Weights) validate(head8 *kernels.Int8Matrix) error {
	if w == nil {
		return fmt.Errorf("%w: nil weights", ErrWeights)
	}
	c := w.Config
	if err := c.Validate(); err != nil {
		return err
	}
	h, v := c.HiddenSize, c.VocabSize
	if head8 != nil && (head8.Rows != v || head8.Cols != h) {
		return fmt.Errorf("%w: int8 head is %dx%d, want vocab_size x hidden_size = %dx%d", ErrWeights, head8.Rows, head8.Cols, v, h)
	}
	if len(w.Embed) != v*h && !(head8 != nil && c.TieWordEmbeddings && w.Embed == nil) {
		return fmt.Errorf("%w: embed_tokens has %d floats, want vocab_size*hidden_size = %d*%d", ErrWeights, len(w.Embed), v, h)
	}
	if len(w.Norm) != h {
		return fmt.Errorf("%w: norm has %d floats, want hidden_size = %d", ErrWeights, len(w.Norm), h)
	}
	if err := checkFinite("norm", w.Norm); err != nil {
		return err
	}
	if c.TieWordEmbeddings && w.Head != nil {
		return fmt.Errorf("%w: lm_head present but tie_word_embeddings is set", ErrWeights)
	}
	if !c.TieWordEmbeddings && len(w.Head) != v*h && !(head8 != nil && w.Head == nil) {
		return fmt.Errorf("%w: lm_head has %d floats, want vocab_size*hidden_size = %d*%d", ErrWeights, len(w.Head), v, h)
	}
	if len(w.Layers) != c.NumLayers {
		return fmt.Errorf("%w: %d layers, want num_hidden_layers = %d", ErrWeights, len(w.Layers), c.NumLayers)
	}
	for i := range w.Layers {
		if err := w.Layers[i].validate(c); err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
	}
	return nil
}

func (l *Layer) validate(c Config) error {
	h, q, kv, in := c.HiddenSize, c.QDim(), c.KVDim(), c.IntermediateSize
	norms := []struct {
		name string
		v    []float32
		n    int
	}{
		{"input_layernorm", l.AttnNorm, h}, {"attn_sub_norm", l.AttnSubNorm, q},
		{"post_attention_layernorm", l.FFNNorm, h}, {"ffn_sub_norm", l.FFNSubNorm, in},
	}
	for _, n := range norms {
		if len(n.v) != n.n {
			return fmt.Errorf("%w: %s has %d floats, want %d", ErrWeights, n.name, len(n.v), n.n)
		}
		if err := checkFinite(n.name, n.v); err != nil {
			return err
		}
	}
	lins := []struct {
		name      string
		m         *ternary.Matrix
		out, cols int
	}{
		{"q_proj", l.Q, q, h}, {"k_proj", l.K, kv, h}, {"v_proj", l.V, kv, h}, {"o_proj", l.O, h, q},
		{"gate_proj", l.Gate, in, h}, {"up_proj", l.Up, in, h}, {"down_proj", l.Down, h, in},
	}
	for _, m := range lins {
		if m.m == nil {
			return fmt.Errorf("%w: %s missing", ErrWeights, m.name)
		}
		if m.m.Rows != m.out || m.m.Cols != m.cols {
			return fmt.Errorf("%w: %s is %dx%d, want %dx%d", ErrWeights, m.name, m.m.Rows, m.m.Cols, m.out, m.cols)
		}
		if len(m.m.Codes) != m.m.Rows*m.m.Stride || m.m.Stride != ternary.PaddedCols(m.m.Cols)/4 {
			return fmt.Errorf("%w: %s has %d code bytes with stride %d, want %d rows of %d", ErrWeights, m.name, len(m.m.Codes), m.m.Stride, m.m.Rows, ternary.PaddedCols(m.m.Cols)/4)
		}
		if s := m.m.Scale; !(s >= 0) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("%w: %s scale %v must be non-negative and finite", ErrWeights, m.name, s)
		}
	}
	return nil
}

// HeadWeights returns the lm_head matrix (the embedding when tied).
func (w *Weights) HeadWeights() []float32 {
	if w.Config.TieWordEmbeddings {
		return w.Embed
	}
	return w.Head
}

// checkFinite fails for a NaN or infinite weight of a norm vector: it would
// turn every hidden state it scales into NaN, so the model would load and
// then fail (or answer garbage) on its first token.
func checkFinite(name string, v []float32) error {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("%w: %s has a non-finite weight %v at index %d", ErrWeights, name, x, i)
		}
	}
	return nil
}
