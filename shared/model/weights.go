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

// Linear indices of Layer.ProjNorm and Layer.Linears, in checkpoint order.
const (
	LinQ = iota
	LinK
	LinV
	LinO
	LinGate
	LinUp
	LinDown
	NumLinears
)

// LinearNames are the Hugging Face module names of the seven linears.
var LinearNames = [NumLinears]string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
	"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}

// Layer is one decoder block. Norm vectors are RMSNorm weights (already
// offset for families whose norms multiply by 1+w, see Config.NormOffset);
// the seven linears are ternary with their per-tensor scale (W ~= T*Scale),
// shaped out x in like PyTorch's nn.Linear.weight. Which norms are present
// depends on the family (Config.SubNorms, ProjNorms, QKNorm, SandwichNorms);
// absent ones are nil.
type Layer struct {
	AttnNorm    []float32 // input_layernorm, HiddenSize
	AttnSubNorm []float32 // self_attn.attn_sub_norm (inner_attn_ln), QDim; SubNorms only
	FFNNorm     []float32 // post_attention_layernorm (Gemma3: pre_feedforward_layernorm), HiddenSize
	FFNSubNorm  []float32 // mlp.ffn_sub_norm (ffn_layernorm), IntermediateSize; SubNorms only

	// QNorm and KNorm normalise each head of q and k before RoPE
	// (self_attn.q_norm/k_norm, HeadDim); QKNorm only.
	QNorm, KNorm []float32
	// PostAttnNorm and PostFFNNorm normalise the attention and FFN outputs
	// before the residual add (Gemma3 post_attention_layernorm and
	// post_feedforward_layernorm, HiddenSize); SandwichNorms only.
	PostAttnNorm, PostFFNNorm []float32
	// ProjNorm[i] normalises the input of linear i (<proj>.norm.weight, its
	// input width); ProjNorms only.
	ProjNorm [NumLinears][]float32

	Q    *ternary.Matrix // QDim x HiddenSize
	K    *ternary.Matrix // KVDim x HiddenSize
	V    *ternary.Matrix // KVDim x HiddenSize
	O    *ternary.Matrix // HiddenSize x QDim
	Gate *ternary.Matrix // IntermediateSize x HiddenSize
	Up   *ternary.Matrix // IntermediateSize x HiddenSize
	Down *ternary.Matrix // HiddenSize x IntermediateSize
}

// Linears returns pointers to the seven linears in LinQ..LinDown order.
func (l *Layer) Linears() [NumLinears]**ternary.Matrix {
	return [NumLinears]**ternary.Matrix{&l.Q, &l.K, &l.V, &l.O, &l.Gate, &l.Up, &l.Down}
}

// LinearShape returns the (out, in) shape of linear i under c.
func LinearShape(c Config, i int) (out, in int) {
	h, q, kv, ff := c.HiddenSize, c.QDim(), c.KVDim(), c.IntermediateSize
	return [NumLinears]int{q, kv, kv, h, ff, ff, h}[i], [NumLinears]int{h, h, h, q, h, h, ff}[i]
}

// NormSpec names one norm vector of a layer, its width and whether the
// configuration needs it.
type NormSpec struct {
	Name string // a Hugging Face-like name for messages
	V    *[]float32
	N    int
	Want bool
}

// NormSpecs lists every norm of the layer with its width under c and
// whether c wants it.
func (l *Layer) NormSpecs(c Config) []NormSpec {
	h, q, in, hd := c.HiddenSize, c.QDim(), c.IntermediateSize, c.HeadDim
	sub, qk, sw, pn := c.SubNorms(), c.QKNorm(), c.SandwichNorms(), c.ProjNorms
	specs := []NormSpec{
		{"input_layernorm", &l.AttnNorm, h, true},
		{"attn_sub_norm", &l.AttnSubNorm, q, sub},
		{"post_attention_layernorm", &l.FFNNorm, h, true},
		{"ffn_sub_norm", &l.FFNSubNorm, in, sub},
		{"q_norm", &l.QNorm, hd, qk},
		{"k_norm", &l.KNorm, hd, qk},
		{"post_attention_norm", &l.PostAttnNorm, h, sw},
		{"post_feedforward_layernorm", &l.PostFFNNorm, h, sw},
	}
	for i := range l.ProjNorm {
		_, n := LinearShape(c, i)
		specs = append(specs, NormSpec{LinearNames[i] + ".norm", &l.ProjNorm[i], n, pn})
	}
	return specs
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
	for _, n := range l.NormSpecs(c) {
		switch {
		case n.Want && len(*n.V) != n.N:
			return fmt.Errorf("%w: %s has %d floats, want %d", ErrWeights, n.Name, len(*n.V), n.N)
		case !n.Want && *n.V != nil:
			return fmt.Errorf("%w: %s is present but the %s configuration has none", ErrWeights, n.Name, c.Family())
		}
		if err := checkFinite(n.Name, *n.V); err != nil {
			return err
		}
	}
	for i, p := range l.Linears() {
		m, name := *p, LinearNames[i]
		out, cols := LinearShape(c, i)
		if m == nil {
			return fmt.Errorf("%w: %s missing", ErrWeights, name)
		}
		if m.Rows != out || m.Cols != cols {
			return fmt.Errorf("%w: %s is %dx%d, want %dx%d", ErrWeights, name, m.Rows, m.Cols, out, cols)
		}
		if len(m.Codes) != m.Rows*m.Stride || m.Stride != ternary.PaddedCols(m.Cols)/4 {
			return fmt.Errorf("%w: %s has %d code bytes with stride %d, want %d rows of %d", ErrWeights, name, len(m.Codes), m.Stride, m.Rows, ternary.PaddedCols(m.Cols)/4)
		}
		if s := m.Scale; !(s >= 0) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("%w: %s scale %v must be non-negative and finite", ErrWeights, name, s)
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
