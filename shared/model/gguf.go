package model

// GGUF files in llama.cpp's "bitnet" architecture (LLM_ARCH_BITNET), as its
// convert_hf_to_gguf.py writes BitNet b1.58 2B4T (BitNetForCausalLM):
//
//   - Tensors: token_embd, output_norm, [output when untied], and per block N
//     blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_sub_norm, attn_output,
//     ffn_norm, ffn_gate, ffn_up, ffn_sub_norm, ffn_down}.weight. GGUF dims
//     list ne0 (the row length, i.e. a linear's input width) first, so an
//     out x in linear has dims [in, out].
//   - No q/k row permutation: the converter's BitnetModel is a plain
//     TextModel (not LlamaModel, which permutes for interleaved RoPE), and
//     llama.cpp runs LLM_ARCH_BITNET with LLAMA_ROPE_TYPE_NEOX, i.e. the
//     rotate-half convention of Hugging Face. Rows are stored as is.
//   - Ternary scale: the converter writes T*s as floats and ggml's TQ2_0/TQ1_0
//     quantizer stores each 256-weight block's absmax in the block's fp16 d,
//     which is s for every block holding a non-zero weight and 0 for all-zero
//     blocks. We write the same (d = fp16(Scale), 0 in all-zero blocks). llama.cpp also loads optional
//     one-element "blk.N.<linear>.scale" tensors and multiplies the product
//     by them; WithScaleTensors writes d = 1 plus an F32 scale tensor, which
//     keeps the float32 scale exactly. ReadGGUF reads both forms.
//   - lm_head: llama.cpp's bitnet graph always multiplies by token_embd (tied
//     embeddings, as in 2B4T). Untied models get an "output.weight" tensor,
//     which llama.cpp's bitnet loader does not accept; our reader does.
//   - Norms are F32 (ggml multiplies by them in F32); the embedding and the
//     output head are F16 by default (like the converter), or F32/BF16/Q8_0.
//   - bitnet.hidden_activation = "relu2". llama.cpp builds before it read
//     this key hard-code SiLU in the bitnet graph (and newer ones fall back
//     to SiLU for names they do not know), so their output differs from the
//     Hugging Face reference in the FFN; the file itself is complete.
//   - Tokenizer: "gpt2" (byte-level BPE) vocabulary padded to vocab_size with
//     "[PAD<id>]" tokens of type UNUSED, merges, and tokenizer.ggml.pre
//     "llama-bpe" (LLaMA 3) or "gpt-2"; other split patterns are stored as
//     the pattern itself, which our reader accepts and llama.cpp does not.
//
// Checked against llama.cpp (the build in node-llama-cpp 3.22.1): a random
// 2B4T-shaped file loads and tokenizes like ours, and with the FFN zeroed
// the logits of a small model agree with ours (correlation 0.999; the rest
// is ggml's per-block activation quantization and fp16 attention).
//
// Keys llama.cpp has no place for (all EOS ids, the HF architecture name)
// live under the "bitnet-mesh." prefix, which llama.cpp ignores.

import (
	"fmt"
	"strings"

	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// GGUFArch is the general.architecture value of BitNet GGUF files.
const GGUFArch = "bitnet"

// GGUF metadata keys (gguf-py constants.py Keys, with arch = "bitnet").
const (
	keyArch          = "general.architecture"
	keyName          = "general.name"
	keyFileType      = "general.file_type"
	keyQuantVersion  = "general.quantization_version"
	keyVocabSize     = GGUFArch + ".vocab_size"
	keyContextLength = GGUFArch + ".context_length"
	keyEmbedding     = GGUFArch + ".embedding_length"
	keyBlockCount    = GGUFArch + ".block_count"
	keyFeedForward   = GGUFArch + ".feed_forward_length"
	keyHeadCount     = GGUFArch + ".attention.head_count"
	keyHeadCountKV   = GGUFArch + ".attention.head_count_kv"
	keyKeyLength     = GGUFArch + ".attention.key_length"
	keyValueLength   = GGUFArch + ".attention.value_length"
	keyRMSEps        = GGUFArch + ".attention.layer_norm_rms_epsilon"
	keyRopeBase      = GGUFArch + ".rope.freq_base"
	keyRopeDims      = GGUFArch + ".rope.dimension_count"
	keyRopeScaling   = GGUFArch + ".rope.scaling.type"
	keyRopeFactor    = GGUFArch + ".rope.scaling.factor"
	keyHiddenAct     = GGUFArch + ".hidden_activation"

	keyTokModel     = "tokenizer.ggml.model"
	keyTokPre       = "tokenizer.ggml.pre"
	keyTokTokens    = "tokenizer.ggml.tokens"
	keyTokTypes     = "tokenizer.ggml.token_type"
	keyTokMerges    = "tokenizer.ggml.merges"
	keyTokBOS       = "tokenizer.ggml.bos_token_id"
	keyTokEOS       = "tokenizer.ggml.eos_token_id"
	keyTokEOT       = "tokenizer.ggml.eot_token_id"
	keyTokEOM       = "tokenizer.ggml.eom_token_id"
	keyTokAddBOS    = "tokenizer.ggml.add_bos_token"
	keyTokAddEOS    = "tokenizer.ggml.add_eos_token"
	keyChatTemplate = "tokenizer.chat_template"

	keyMeshArch = "bitnet-mesh.architecture"
	keyMeshEOS  = "bitnet-mesh.eos_token_ids"
)

// llama.cpp's llama_ftype values for general.file_type.
const (
	fileTypeF32   = 0
	fileTypeF16   = 1
	fileTypeQ8_0  = 7
	fileTypeBF16  = 32
	fileTypeTQ1_0 = 36
	fileTypeTQ2_0 = 37
)

// Tensor names.
const (
	tensorEmbed  = "token_embd.weight"
	tensorNorm   = "output_norm.weight"
	tensorOutput = "output.weight"
)

// blockTensor returns the name of tensor part (e.g. "attn_q") of block i.
func blockTensor(i int, part, suffix string) string {
	return fmt.Sprintf("blk.%d.%s.%s", i, part, suffix)
}

// linearRef names one ternary linear of a layer for reading and writing.
type linearRef struct {
	part string // GGUF name part, e.g. "attn_q"
	hf   string // HF name, for messages
	m    **ternary.Matrix
	out  int
	in   int
}

func (l *Layer) linears(c Config) []linearRef {
	h, q, kv, ff := c.HiddenSize, c.QDim(), c.KVDim(), c.IntermediateSize
	return []linearRef{
		{"attn_q", "q_proj", &l.Q, q, h},
		{"attn_k", "k_proj", &l.K, kv, h},
		{"attn_v", "v_proj", &l.V, kv, h},
		{"attn_output", "o_proj", &l.O, h, q},
		{"ffn_gate", "gate_proj", &l.Gate, ff, h},
		{"ffn_up", "up_proj", &l.Up, ff, h},
		{"ffn_down", "down_proj", &l.Down, h, ff},
	}
}

// normRef names one RMSNorm vector of a layer.
type normRef struct {
	part string
	v    *[]float32
	n    int
}

func (l *Layer) norms(c Config) []normRef {
	return []normRef{
		{"attn_norm", &l.AttnNorm, c.HiddenSize},
		{"attn_sub_norm", &l.AttnSubNorm, c.QDim()},
		{"ffn_norm", &l.FFNNorm, c.HiddenSize},
		{"ffn_sub_norm", &l.FFNSubNorm, c.IntermediateSize},
	}
}

// ggufOptions holds WriteGGUF's settings.
type ggufOptions struct {
	ternary      gguf.Type
	float        gguf.Type
	scaleTensors bool
	name         string
	chatTemplate string
}

// GGUFOption configures WriteGGUF.
type GGUFOption func(*ggufOptions)

// WithTernaryType sets the type of the seven ternary linears of every block:
// gguf.TQ2_0 (default, 2.06 bits per weight) or gguf.TQ1_0 (1.69 bits).
func WithTernaryType(t gguf.Type) GGUFOption { return func(o *ggufOptions) { o.ternary = t } }

// WithFloatType sets the type of token_embd (and output when untied):
// gguf.F16 (default), gguf.F32, gguf.BF16 or gguf.Q8_0.
func WithFloatType(t gguf.Type) GGUFOption { return func(o *ggufOptions) { o.float = t } }

// WithScaleTensors stores each ternary scale exactly, as a one-element F32
// "<name>.scale" tensor with block d = 1, instead of rounding it to the fp16
// block d. Both forms load in llama.cpp.
func WithScaleTensors(on bool) GGUFOption { return func(o *ggufOptions) { o.scaleTensors = on } }

// WithModelName sets general.name.
func WithModelName(name string) GGUFOption { return func(o *ggufOptions) { o.name = name } }

// WithChatTemplate stores a Jinja chat template as tokenizer.chat_template.
func WithChatTemplate(tmpl string) GGUFOption { return func(o *ggufOptions) { o.chatTemplate = tmpl } }

// WriteGGUF writes w (and tok, when not nil) to path as a llama.cpp "bitnet"
// GGUF file. Ternary linears need an input width that is a multiple of 256
// (one TQ block). The file is written atomically.
func WriteGGUF(path string, w *Weights, tok *tokenizer.Tokenizer, opts ...GGUFOption) error {
	wr, err := buildGGUF(w, tok, opts...)
	if err != nil {
		return fmt.Errorf("gguf %s: %w", path, err)
	}
	if err := wr.WriteFile(path); err != nil {
		return fmt.Errorf("gguf %s: %w", path, err)
	}
	return nil
}

// buildGGUF fills a gguf.Writer with the metadata and tensors of w.
func buildGGUF(w *Weights, tok *tokenizer.Tokenizer, opts ...GGUFOption) (*gguf.Writer, error) {
	o := ggufOptions{ternary: gguf.TQ2_0, float: gguf.F16, name: "bitnet"}
	for _, f := range opts {
		f(&o)
	}
	if err := w.Validate(); err != nil {
		return nil, err
	}
	if err := CheckGGUF(w.Config, o.ternary); err != nil {
		return nil, err
	}
	var fileType uint32
	switch o.ternary {
	case gguf.TQ2_0:
		fileType = fileTypeTQ2_0
	case gguf.TQ1_0:
		fileType = fileTypeTQ1_0
	default:
		return nil, fmt.Errorf("%w: ternary tensor type %v is not supported (want TQ2_0 or TQ1_0)", ErrWeights, o.ternary)
	}
	switch o.float {
	case gguf.F32, gguf.F16, gguf.BF16, gguf.Q8_0:
	default:
		return nil, fmt.Errorf("%w: embedding tensor type %v is not supported (want F32, F16, BF16 or Q8_0)", ErrWeights, o.float)
	}
	c := w.Config
	wr := gguf.NewWriter()
	if err := addConfigKVs(wr, c, o, fileType); err != nil {
		return nil, err
	}
	if tok != nil {
		if err := addTokenizerKVs(wr, tok, c); err != nil {
			return nil, err
		}
	}
	if o.chatTemplate != "" {
		if err := wr.AddKV(keyChatTemplate, o.chatTemplate); err != nil {
			return nil, err
		}
	}
	h, v := uint64(c.HiddenSize), uint64(c.VocabSize)
	if err := addFloatTensor(wr, tensorEmbed, o.float, []uint64{h, v}, w.Embed); err != nil {
		return nil, err
	}
	for i := range w.Layers {
		l := &w.Layers[i]
		for _, n := range l.norms(c) {
			name := blockTensor(i, n.part, "weight")
			if err := addFloatTensor(wr, name, gguf.F32, []uint64{uint64(n.n)}, *n.v); err != nil {
				return nil, err
			}
		}
		for _, lin := range l.linears(c) {
			if err := addTernary(wr, i, lin, o); err != nil {
				return nil, err
			}
		}
	}
	if err := addFloatTensor(wr, tensorNorm, gguf.F32, []uint64{h}, w.Norm); err != nil {
		return nil, err
	}
	if !c.TieWordEmbeddings {
		if err := addFloatTensor(wr, tensorOutput, o.float, []uint64{h, v}, w.Head); err != nil {
			return nil, err
		}
	}
	return wr, nil
}

// ErrGGUF reports a model that a GGUF file of the asked type cannot hold.
// It wraps ErrWeights.
var ErrGGUF = fmt.Errorf("%w: not writable as GGUF", ErrWeights)

// CheckGGUF reports whether WriteGGUF can write a model of configuration c
// with ternary tensors of type t, before any work: the family must have a
// GGUF layout here (bitnet, bitnet-b1.58 so far) and every linear's input
// width must be a multiple of 256 for TQ2_0/TQ1_0 (one TQ block; widths like
// 1bitLLM 3B's 3200/8640 need I2_S). The error names what does not fit.
func CheckGGUF(c Config, t gguf.Type) error {
	if f := c.Family(); f != FamilyBitNet && f != FamilyBitNetB158 {
		return fmt.Errorf("%w: the %s family has no GGUF layout here yet (bitnet and bitnet-b1.58 do)", ErrGGUF, f)
	}
	if t != gguf.TQ2_0 && t != gguf.TQ1_0 {
		return nil // the type check comes later, with its own message
	}
	var bad []string
	for _, w := range []struct {
		name string
		n    int
	}{{"hidden_size", c.HiddenSize}, {"intermediate_size", c.IntermediateSize}, {"num_attention_heads*head_dim", c.QDim()}} {
		if w.n%ternary.BlockSize != 0 {
			bad = append(bad, fmt.Sprintf("%s = %d", w.name, w.n))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %v needs every linear input width to be a multiple of %d; %s are not (I2_S holds any width)",
			ErrGGUF, t, ternary.BlockSize, strings.Join(bad, ", "))
	}
	return nil
}

// addConfigKVs writes general.* and bitnet.* keys in the converter's order.
func addConfigKVs(wr *gguf.Writer, c Config, o ggufOptions, fileType uint32) error {
	eos := make([]int32, len(c.EOSTokenIDs))
	for i, id := range c.EOSTokenIDs {
		eos[i] = int32(id)
	}
	kvs := []gguf.KV{
		{Key: keyArch, Value: GGUFArch},
		{Key: keyName, Value: o.name},
		{Key: keyVocabSize, Value: uint32(c.VocabSize)},
		{Key: keyContextLength, Value: uint32(c.MaxPositions)},
		{Key: keyEmbedding, Value: uint32(c.HiddenSize)},
		{Key: keyBlockCount, Value: uint32(c.NumLayers)},
		{Key: keyFeedForward, Value: uint32(c.IntermediateSize)},
		{Key: keyHeadCount, Value: uint32(c.NumHeads)},
		{Key: keyHeadCountKV, Value: uint32(c.NumKVHeads)},
		{Key: keyKeyLength, Value: uint32(c.HeadDim)},
		{Key: keyValueLength, Value: uint32(c.HeadDim)},
		{Key: keyRopeDims, Value: uint32(c.HeadDim)},
		{Key: keyRopeBase, Value: float32(c.RopeTheta)},
		{Key: keyRMSEps, Value: c.RMSNormEps},
		{Key: keyHiddenAct, Value: c.HiddenAct},
		{Key: keyRopeScaling, Value: "linear"},
		{Key: keyRopeFactor, Value: float32(1)},
		{Key: keyFileType, Value: fileType},
		{Key: keyQuantVersion, Value: uint32(2)},
		{Key: keyMeshArch, Value: c.Architecture},
		{Key: keyMeshEOS, Value: eos},
	}
	for _, kv := range kvs {
		if err := wr.AddKV(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	return nil
}

// addFloatTensor encodes x as typ and adds it.
func addFloatTensor(wr *gguf.Writer, name string, typ gguf.Type, dims []uint64, x []float32) error {
	data, err := gguf.EncodeFloat32(typ, x)
	if err != nil {
		return fmt.Errorf("%w: tensor %s: %w", ErrWeights, name, err)
	}
	if err := wr.AddTensor(name, typ, dims, data); err != nil {
		return fmt.Errorf("%w: tensor %s: %w", ErrWeights, name, err)
	}
	return nil
}

// addTernary encodes one linear of block i (and its scale tensor when asked).
func addTernary(wr *gguf.Writer, i int, lin linearRef, o ggufOptions) error {
	m := *lin.m
	name := blockTensor(i, lin.part, "weight")
	if m.Cols%ternary.BlockSize != 0 {
		return fmt.Errorf("%w: tensor %s (%s) has %d columns; %v needs a multiple of %d", ErrWeights, name, lin.hf, m.Cols, o.ternary, ternary.BlockSize)
	}
	enc := m
	if o.scaleTensors {
		cp := *m
		cp.Scale = 1
		enc = &cp
	}
	var data []byte
	var err error
	if o.ternary == gguf.TQ1_0 {
		data, err = enc.EncodeTQ1_0()
	} else {
		data, err = enc.EncodeTQ2_0()
	}
	if err != nil {
		return fmt.Errorf("%w: tensor %s: %w", ErrWeights, name, err)
	}
	if err := wr.AddTensor(name, o.ternary, []uint64{uint64(m.Cols), uint64(m.Rows)}, data); err != nil {
		return fmt.Errorf("%w: tensor %s: %w", ErrWeights, name, err)
	}
	if o.scaleTensors {
		return addFloatTensor(wr, blockTensor(i, lin.part, "scale"), gguf.F32, []uint64{1}, []float32{m.Scale})
	}
	return nil
}

// ParseTernaryType parses a ternary GGUF type name for command lines:
// "tq2_0" or "tq1_0" (any case).
func ParseTernaryType(s string) (gguf.Type, error) {
	switch strings.ToLower(s) {
	case "tq2_0":
		return gguf.TQ2_0, nil
	case "tq1_0":
		return gguf.TQ1_0, nil
	}
	return 0, fmt.Errorf("model: ternary GGUF type %q: want tq2_0 or tq1_0", s)
}
