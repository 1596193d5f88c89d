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
// Keys llama.cpp has no place for (all EOS ids, the HF architecture name,
// and the whole Config as JSON in bitnet-mesh.config) live under the
// "bitnet-mesh." prefix, which llama.cpp ignores.
//
// The other families and bitnet.cpp (microsoft/BitNet and its llama.cpp
// fork; tools/llamacpp-check/README.md has the cross-checks):
//
//   - 2B4T with I2_S linears is written as "bitnet-b1.58", the architecture
//     bitnet.cpp runs with relu2 ("bitnet-25", its older name, reads the
//     same). 1bitLLM (BitnetForCausalLM, SiLU) is "bitnet", which both
//     llama.cpp and bitnet.cpp run with SiLU; a "bitnet" file with a
//     SentencePiece vocabulary and no hidden_activation key is read as
//     1bitLLM.
//   - llama (Llama3-8B-1.58, Falcon3): llama.cpp's "llama" tensors without
//     sub-norms, q and k rows permuted to llama.cpp's interleaved RoPE order
//     (permuteRows), as convert_hf_to_gguf.py's LlamaModel does.
//   - qwen3 and gemma3 (the BitNet embedding models): the names of
//     bitnet.cpp's convert-bitnet-embedding-to-gguf.py: attn_q_norm and
//     attn_k_norm (q/k norms), post_attention_norm and post_ffw_norm (Gemma's
//     sandwich norms; Gemma's (1+w) norms stored offset, as llama.cpp's),
//     <linear>_norm_in for the per-projection norms, <arch>.pooling_type.
//   - Linears whose width the requested type cannot hold fall back per
//     tensor (PlanGGUF): I2_S (multiples of 128), Q8_0, F16.
//   - Tokenizers: "gpt2" for byte-level BPE (pre llama-bpe, qwen2, gpt-2),
//     "llama" (SentencePiece: scores, byte tokens, add_space_prefix) for
//     LLaMA 2 and Gemma vocabularies.

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/half"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// GGUFArch is the general.architecture value of BitNet GGUF files.
const GGUFArch = "bitnet"

// Architectures of BitNet GGUF files. llama.cpp's converter writes "bitnet"
// (LLM_ARCH_BITNET); bitnet.cpp's llama.cpp fork also runs "bitnet-25"
// (convert-ms-to-gguf-bitnet.py, BitNet b1.58 2B4T) and "bitnet-b1.58"
// (convert-hf-to-gguf-bitnet.py since 2026), both with its relu2 graph
// (build_bitnet_158), while its "bitnet" graph is 1bitLLM's SiLU one.
const (
	GGUFArchBitNet25   = "bitnet-25"
	GGUFArchBitNetB158 = "bitnet-b1.58"
)

// ggufArchs lists the general.architecture values ReadGGUF accepts.
var ggufArchs = []string{GGUFArch, GGUFArchBitNet25, GGUFArchBitNetB158, "llama", "qwen3", "gemma3"}

// Suffixes of the per-architecture metadata keys (gguf-py constants.py
// Keys.LLM and Keys.Attention, after "<arch>").
const (
	sfxVocabSize     = ".vocab_size"
	sfxContextLength = ".context_length"
	sfxEmbedding     = ".embedding_length"
	sfxBlockCount    = ".block_count"
	sfxFeedForward   = ".feed_forward_length"
	sfxHeadCount     = ".attention.head_count"
	sfxHeadCountKV   = ".attention.head_count_kv"
	sfxKeyLength     = ".attention.key_length"
	sfxValueLength   = ".attention.value_length"
	sfxRMSEps        = ".attention.layer_norm_rms_epsilon"
	sfxRopeBase      = ".rope.freq_base"
	sfxRopeDims      = ".rope.dimension_count"
	sfxRopeScaling   = ".rope.scaling.type"
	sfxRopeFactor    = ".rope.scaling.factor"
	sfxHiddenAct     = ".hidden_activation"
)

// GGUF metadata keys of "bitnet" files (gguf-py constants.py Keys).
const (
	keyArch          = "general.architecture"
	keyName          = "general.name"
	keyFileType      = "general.file_type"
	keyQuantVersion  = "general.quantization_version"
	keyVocabSize     = GGUFArch + sfxVocabSize
	keyContextLength = GGUFArch + sfxContextLength
	keyEmbedding     = GGUFArch + sfxEmbedding
	keyBlockCount    = GGUFArch + sfxBlockCount
	keyFeedForward   = GGUFArch + sfxFeedForward
	keyHeadCount     = GGUFArch + sfxHeadCount
	keyHeadCountKV   = GGUFArch + sfxHeadCountKV
	keyKeyLength     = GGUFArch + sfxKeyLength
	keyValueLength   = GGUFArch + sfxValueLength
	keyRMSEps        = GGUFArch + sfxRMSEps
	keyRopeBase      = GGUFArch + sfxRopeBase
	keyRopeDims      = GGUFArch + sfxRopeDims
	keyRopeScaling   = GGUFArch + sfxRopeScaling
	keyRopeFactor    = GGUFArch + sfxRopeFactor
	keyHiddenAct     = GGUFArch + sfxHiddenAct

	keyTokModel       = "tokenizer.ggml.model"
	keyTokPre         = "tokenizer.ggml.pre"
	keyTokTokens      = "tokenizer.ggml.tokens"
	keyTokTypes       = "tokenizer.ggml.token_type"
	keyTokMerges      = "tokenizer.ggml.merges"
	keyTokScores      = "tokenizer.ggml.scores"
	keyTokSpacePrefix = "tokenizer.ggml.add_space_prefix"
	keyTokBOS         = "tokenizer.ggml.bos_token_id"
	keyTokEOS         = "tokenizer.ggml.eos_token_id"
	keyTokEOT         = "tokenizer.ggml.eot_token_id"
	keyTokEOM         = "tokenizer.ggml.eom_token_id"
	keyTokAddBOS      = "tokenizer.ggml.add_bos_token"
	keyTokAddEOS      = "tokenizer.ggml.add_eos_token"
	keyChatTemplate   = "tokenizer.chat_template"

	keyMeshArch   = "bitnet-mesh.architecture"
	keyMeshEOS    = "bitnet-mesh.eos_token_ids"
	keyMeshConfig = "bitnet-mesh.config" // the whole Config as JSON: what llama.cpp's keys cannot say

	sfxPooling       = ".pooling_type"             // llama.cpp LLAMA_POOLING_TYPE_*
	sfxSlidingWindow = ".attention.sliding_window" // Gemma3
)

// llama.cpp's llama_ftype values for general.file_type.
const (
	fileTypeF32   = 0
	fileTypeF16   = 1
	fileTypeQ8_0  = 7
	fileTypeBF16  = 32
	fileTypeTQ1_0 = 36
	fileTypeTQ2_0 = 37
	fileTypeI2_S  = 40 // bitnet.cpp's LLAMA_FTYPE_MOSTLY_I2_S
)

// Tensor names.
const (
	tensorEmbed  = "token_embd.weight"
	tensorNorm   = "output_norm.weight"
	tensorOutput = "output.weight"
	// tensorRopeFreqs is llama.cpp's per-frequency RoPE divisors
	// (LLM_TENSOR_ROPE_FREQS, [head_dim/2] F32): how its converters store
	// llama3 rope scaling.
	tensorRopeFreqs = "rope_freqs.weight"
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

// ggufNormParts maps the layer norms (NormSpec names) to GGUF names:
// llama.cpp's, and for the per-projection norms bitnet.cpp's embedding
// converter's ("<linear>_norm_in", docs/bitnet-embeddings-i2s-guide.md).
var ggufNormParts = map[string]string{
	"input_layernorm":            "attn_norm",
	"attn_sub_norm":              "attn_sub_norm",
	"post_attention_layernorm":   "ffn_norm", // Gemma3: pre_feedforward_layernorm
	"ffn_sub_norm":               "ffn_sub_norm",
	"q_norm":                     "attn_q_norm",
	"k_norm":                     "attn_k_norm",
	"post_attention_norm":        "post_attention_norm",
	"post_feedforward_layernorm": "post_ffw_norm",
}

// norms lists the RMSNorm vectors c wants, with their GGUF names. Weights
// hold Gemma's (1+w) norms already offset, which is what llama.cpp's Gemma
// files store too; the per-projection norms are plain.
func (l *Layer) norms(c Config) []normRef {
	var out []normRef
	lin := l.linears(c)
	for _, ns := range l.NormSpecs(c) {
		if !ns.Want {
			continue
		}
		part, ok := ggufNormParts[ns.Name]
		if !ok {
			for i, name := range LinearNames {
				if ns.Name == name+".norm" {
					part, ok = lin[i].part+"_norm_in", true
				}
			}
		}
		if ok {
			out = append(out, normRef{part, ns.V, ns.N})
		}
	}
	return out
}

// poolingType is llama.cpp's LLAMA_POOLING_TYPE of a pooling strategy.
func poolingType(p string) uint32 {
	switch p {
	case PoolMean:
		return 1
	case PoolLast:
		return 3
	}
	return 0
}

// ggufArchOf is the general.architecture a family is written as (I2_S
// files of relu2 models become "bitnet-b1.58", see PlanGGUF).
func ggufArchOf(f Family) string {
	switch f {
	case FamilyLlama:
		return "llama"
	case FamilyQwen3:
		return "qwen3"
	case FamilyGemma3:
		return "gemma3"
	}
	return GGUFArch // bitnet (2B4T), and 1bitLLM's bitnet-b1.58 family
}

// permutesQK reports whether a family's GGUF stores q and k rows in
// llama.cpp's interleaved RoPE order (LLAMA_ROPE_TYPE_NORM): its llama
// architecture, which convert_hf_to_gguf.py's LlamaModel permutes. The
// bitnet, qwen3 and gemma3 architectures use NEOX RoPE, Hugging Face's order.
func permutesQK(f Family) bool { return f == FamilyLlama }

// permuteRows returns m with its rows in GGUF order (toGGUF) or back, for
// heads of headDim rows: HF row h*hd + half*hd/2 + j is GGUF row
// h*hd + 2*j + half (convert_hf_to_gguf.py's LlamaModel.permute).
func permuteRows(m *ternary.Matrix, headDim int, toGGUF bool) (*ternary.Matrix, error) {
	if headDim%2 != 0 || m.Rows%headDim != 0 {
		return nil, fmt.Errorf("%w: %d rows are not whole heads of %d", ErrWeights, m.Rows, headDim)
	}
	out := &ternary.Matrix{Rows: m.Rows, Cols: m.Cols, Stride: m.Stride, Codes: make([]byte, len(m.Codes)), Scale: m.Scale}
	half := headDim / 2
	for r := 0; r < m.Rows; r++ {
		h, i := r/headDim, r%headDim
		g := h*headDim + 2*(i%half) + i/half // GGUF row of HF row r
		src, dst := r, g
		if !toGGUF {
			src, dst = g, r
		}
		copy(out.Codes[dst*m.Stride:(dst+1)*m.Stride], m.Codes[src*m.Stride:(src+1)*m.Stride])
	}
	return out, nil
}

// ggufOptions holds WriteGGUF's settings.
type ggufOptions struct {
	ternary      gguf.Type
	float        gguf.Type
	scaleTensors bool
	i2sFallback  bool
	name         string
	chatTemplate string
}

// GGUFOption configures WriteGGUF.
type GGUFOption func(*ggufOptions)

// WithTernaryType sets the type of the ternary linears: gguf.TQ2_0
// (default, 2.06 bits per weight), gguf.TQ1_0 (1.69 bits) or gguf.I2_S
// (bitnet.cpp, 2 bits: the file then has bitnet.cpp's architecture
// "bitnet-b1.58" and only bitnet.cpp and this project read it). A linear
// whose width the type cannot hold falls back as PlanGGUF says.
func WithTernaryType(t gguf.Type) GGUFOption { return func(o *ggufOptions) { o.ternary = t } }

// WithI2SFallback lets linears whose width is not a multiple of 256 (which
// TQ2_0 and TQ1_0 need) be written as bitnet.cpp's I2_S when the width is a
// multiple of 128 (default on). Off, they fall back to Q8_0 or F16, which
// llama.cpp reads, and the file keeps the "bitnet" architecture.
func WithI2SFallback(on bool) GGUFOption { return func(o *ggufOptions) { o.i2sFallback = on } }

// WithFloatType sets the type of token_embd (and output when untied):
// gguf.F16 (default), gguf.F32, gguf.BF16 or gguf.Q8_0.
func WithFloatType(t gguf.Type) GGUFOption { return func(o *ggufOptions) { o.float = t } }

// WithScaleTensors stores each ternary scale exactly, as a one-element F32
// "<name>.scale" tensor with block d = 1, instead of rounding it to the fp16
// block d. Both forms load in llama.cpp. I2_S tensors carry their float32
// scale themselves, and files with bitnet.cpp's "bitnet-b1.58" architecture
// never get scale tensors (its graph applies only some of them).
func WithScaleTensors(on bool) GGUFOption { return func(o *ggufOptions) { o.scaleTensors = on } }

// WithModelName sets general.name.
func WithModelName(name string) GGUFOption { return func(o *ggufOptions) { o.name = name } }

// WithChatTemplate stores a Jinja chat template as tokenizer.chat_template.
func WithChatTemplate(tmpl string) GGUFOption { return func(o *ggufOptions) { o.chatTemplate = tmpl } }

// TensorChoice is how WriteGGUF stores one ternary linear.
type TensorChoice struct {
	Name   string    // GGUF tensor name, e.g. "blk.0.ffn_down.weight"
	Rows   int       // output width (ne1)
	Cols   int       // input width (ne0)
	Type   gguf.Type // TQ2_0, TQ1_0, I2_S, Q8_0 or F16
	Reason string    // why Type differs from the requested type; "" when it does not
}

// GGUFPlan is what WriteGGUF writes for a model: the file's architecture and
// the type of every ternary linear.
type GGUFPlan struct {
	Arch    string
	Tensors []TensorChoice
}

// PlanGGUF returns the architecture and the tensor types that WriteGGUF would
// use for w and opts, so that callers (the quantizer's report) can say which
// type each linear got and why. Types follow the widths:
//
//   - the requested type when it holds the width: TQ2_0/TQ1_0 need a multiple
//     of 256, I2_S a multiple of 128 (bitnet.cpp's kernels compute wrong
//     results for rows that are not whole 128-weight blocks);
//   - else I2_S, when the width is a multiple of 128 and WithI2SFallback is on;
//   - else Q8_0 (a multiple of 32: exact ternary codes with d = the scale,
//     8.5 bits per weight) or F16 (T*s, 16 bits), which llama.cpp and
//     bitnet.cpp read.
//
// A file with any I2_S linear gets bitnet.cpp's "bitnet-b1.58" architecture
// (relu2 models; "bitnet" otherwise), others llama.cpp's "bitnet".
func PlanGGUF(w *Weights, opts ...GGUFOption) (GGUFPlan, error) {
	o := newGGUFOptions(opts)
	if err := o.check(); err != nil {
		return GGUFPlan{}, err
	}
	return planGGUF(w, o), nil
}

func newGGUFOptions(opts []GGUFOption) ggufOptions {
	o := ggufOptions{ternary: gguf.TQ2_0, float: gguf.F16, name: "bitnet", i2sFallback: true}
	for _, f := range opts {
		f(&o)
	}
	return o
}

func (o ggufOptions) check() error {
	switch o.ternary {
	case gguf.TQ2_0, gguf.TQ1_0, gguf.I2_S:
	default:
		return fmt.Errorf("%w: ternary tensor type %v is not supported (want TQ2_0, TQ1_0 or I2_S)", ErrWeights, o.ternary)
	}
	switch o.float {
	case gguf.F32, gguf.F16, gguf.BF16, gguf.Q8_0:
	default:
		return fmt.Errorf("%w: embedding tensor type %v is not supported (want F32, F16, BF16 or Q8_0)", ErrWeights, o.float)
	}
	return nil
}

// planGGUF chooses the tensor types (see PlanGGUF); w's shapes are valid.
func planGGUF(w *Weights, o ggufOptions) GGUFPlan {
	var p GGUFPlan
	i2s := false
	for i := range w.Layers {
		for _, lin := range w.Layers[i].linears(w.Config) {
			typ, why := ternaryTypeFor(o, lin.in)
			i2s = i2s || typ == gguf.I2_S
			p.Tensors = append(p.Tensors, TensorChoice{Name: blockTensor(i, lin.part, "weight"), Rows: lin.out, Cols: lin.in, Type: typ, Reason: why})
		}
	}
	p.Arch = ggufArchOf(w.Config.Family())
	if i2s && p.Arch == GGUFArch && w.Config.HiddenAct == ActReLU2 {
		p.Arch = GGUFArchBitNetB158
	}
	return p
}

// i2sRowBlock is the row unit bitnet.cpp's x86 I2_S kernels compute right.
const i2sRowBlock = int(ternary.I2SBlock128)

// ternaryTypeFor returns the type of a linear of width cols and, when it is
// not the requested one, why.
func ternaryTypeFor(o ggufOptions, cols int) (gguf.Type, string) {
	fits := func(t gguf.Type) bool {
		if t == gguf.I2_S {
			return cols%i2sRowBlock == 0
		}
		return cols%ternary.BlockSize == 0
	}
	if fits(o.ternary) {
		return o.ternary, ""
	}
	need := fmt.Sprintf("width %d is not a multiple of %d, which %v needs", cols, ternary.BlockSize, o.ternary)
	if o.ternary == gguf.I2_S {
		need = fmt.Sprintf("width %d is not a multiple of %d, which bitnet.cpp's I2_S kernels need", cols, i2sRowBlock)
	} else if o.i2sFallback && fits(gguf.I2_S) {
		return gguf.I2_S, need + fmt.Sprintf("; I2_S (bitnet.cpp, 2 bits per weight) holds multiples of %d", i2sRowBlock)
	}
	if cols%32 == 0 {
		return gguf.Q8_0, need + "; Q8_0 holds the ternary codes exactly (8.5 bits per weight) and llama.cpp reads it"
	}
	return gguf.F16, need + "; F16 holds T*s (16 bits per weight) and llama.cpp reads it"
}

// WriteGGUF writes w (and tok, when not nil) to path as a GGUF file that
// llama.cpp (architecture "bitnet") or bitnet.cpp ("bitnet-b1.58", when I2_S
// is used) loads; PlanGGUF tells which. The file is written atomically.
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
	o := newGGUFOptions(opts)
	if err := o.check(); err != nil {
		return nil, err
	}
	if err := w.Validate(); err != nil {
		return nil, err
	}
	if err := CheckGGUF(w.Config, o.ternary); err != nil {
		return nil, err
	}
	plan := planGGUF(w, o)
	if plan.Arch != GGUFArch {
		o.scaleTensors = false
	}
	fileType := uint32(fileTypeTQ2_0)
	switch o.ternary {
	case gguf.TQ1_0:
		fileType = fileTypeTQ1_0
	case gguf.I2_S:
		fileType = fileTypeI2_S
	}
	c := w.Config
	wr := gguf.NewWriter()
	if err := addConfigKVs(wr, c, o, plan.Arch, fileType); err != nil {
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
	k := 0
	for i := range w.Layers {
		l := &w.Layers[i]
		for _, n := range l.norms(c) {
			name := blockTensor(i, n.part, "weight")
			if err := addFloatTensor(wr, name, gguf.F32, []uint64{uint64(n.n)}, *n.v); err != nil {
				return nil, err
			}
		}
		for _, lin := range l.linears(c) {
			if permutesQK(c.Family()) && (lin.part == "attn_q" || lin.part == "attn_k") {
				m, err := permuteRows(*lin.m, c.HeadDim, true)
				if err != nil {
					return nil, err
				}
				lin.m = &m
			}
			if err := addTernary(wr, i, lin, plan.Tensors[k].Type, o.scaleTensors); err != nil {
				return nil, err
			}
			k++
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
	if f := ropeFreqFactors(c); f != nil {
		if err := addFloatTensor(wr, tensorRopeFreqs, gguf.F32, []uint64{uint64(len(f))}, f); err != nil {
			return nil, err
		}
	}
	return wr, nil
}

// ropeFreqFactors returns the rope_freqs tensor of c's rope scaling, as
// llama.cpp's convert_hf_to_gguf.py computes it for llama3 (the divisor of
// each inverse frequency: 1 for high frequencies, factor for low ones,
// interpolated between), or nil when c needs none. linear scaling is the
// rope.scaling keys' (ropeLinearFactor).
func ropeFreqFactors(c Config) []float32 {
	s := c.RopeScaling
	if s == nil {
		return nil
	}
	switch s.Type {
	case "factors":
		return s.Factors
	case "llama3":
	default:
		return nil
	}
	out := make([]float32, c.HeadDim/2)
	old := float64(s.OriginalMaxPosition)
	lowWave, highWave := old/s.LowFreqFactor, old/s.HighFreqFactor
	for i := range out {
		inv := float64(1 / float32(math.Pow(c.RopeTheta, float64(float32(2*i)/float32(c.HeadDim)))))
		wave := 2 * math.Pi / inv
		switch {
		case wave < highWave:
			out[i] = 1
		case wave > lowWave:
			out[i] = float32(s.Factor)
		default:
			smooth := (old/wave - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor)
			out[i] = float32(1 / ((1-smooth)/s.Factor + smooth))
		}
	}
	return out
}

// ropeLinearFactor is the rope.scaling.factor key of c: linear scaling's
// factor, the overall factor of "factors", else 1 (llama3 is all in
// rope_freqs).
func ropeLinearFactor(c Config) float32 {
	if s := c.RopeScaling; s != nil && (s.Type == "linear" || s.Type == "factors") {
		return float32(s.Factor)
	}
	return 1
}

// ErrGGUF reports a model that a GGUF file of the asked type cannot hold.
// It wraps ErrWeights.
var ErrGGUF = fmt.Errorf("%w: not writable as GGUF", ErrWeights)

// CheckGGUF reports whether WriteGGUF can write a model of configuration c
// with ternary tensors of type t, before any work: the family must have a
// GGUF layout here. Every width is writable: PlanGGUF picks, per linear, a
// type that holds it (I2_S, Q8_0 or F16 where TQ2_0/TQ1_0 cannot).
func CheckGGUF(c Config, t gguf.Type) error {
	if c.Family() == "" {
		return fmt.Errorf("%w: architecture %q has no GGUF layout", ErrGGUF, c.Architecture)
	}
	if s := c.RopeScaling; s != nil && s.Type != "linear" && s.Type != "llama3" && s.Type != "factors" {
		return fmt.Errorf("%w: rope_scaling %q has no GGUF form", ErrGGUF, s.Type)
	}
	return nil
}

// addConfigKVs writes general.* and <arch>.* keys in the converter's order.
func addConfigKVs(wr *gguf.Writer, c Config, o ggufOptions, arch string, fileType uint32) error {
	eos := make([]int32, len(c.EOSTokenIDs))
	for i, id := range c.EOSTokenIDs {
		eos[i] = int32(id)
	}
	kvs := []gguf.KV{
		{Key: keyArch, Value: arch},
		{Key: keyName, Value: o.name},
		{Key: arch + sfxVocabSize, Value: uint32(c.VocabSize)},
		{Key: arch + sfxContextLength, Value: uint32(c.MaxPositions)},
		{Key: arch + sfxEmbedding, Value: uint32(c.HiddenSize)},
		{Key: arch + sfxBlockCount, Value: uint32(c.NumLayers)},
		{Key: arch + sfxFeedForward, Value: uint32(c.IntermediateSize)},
		{Key: arch + sfxHeadCount, Value: uint32(c.NumHeads)},
		{Key: arch + sfxHeadCountKV, Value: uint32(c.NumKVHeads)},
		{Key: arch + sfxKeyLength, Value: uint32(c.HeadDim)},
		{Key: arch + sfxValueLength, Value: uint32(c.HeadDim)},
		{Key: arch + sfxRopeDims, Value: uint32(c.HeadDim)},
		{Key: arch + sfxRopeBase, Value: float32(c.RopeTheta)},
		{Key: arch + sfxRMSEps, Value: c.RMSNormEps},
		{Key: arch + sfxHiddenAct, Value: c.HiddenAct},
		{Key: arch + sfxRopeScaling, Value: "linear"},
		{Key: arch + sfxRopeFactor, Value: ropeLinearFactor(c)},
		{Key: keyFileType, Value: fileType},
		{Key: keyQuantVersion, Value: uint32(2)},
		{Key: keyMeshArch, Value: c.Architecture},
		{Key: keyMeshEOS, Value: eos},
	}
	if c.IsEmbedding() {
		kvs = append(kvs, gguf.KV{Key: arch + sfxPooling, Value: poolingType(c.Pooling)})
	}
	if c.SlidingWindow > 0 {
		kvs = append(kvs, gguf.KV{Key: arch + sfxSlidingWindow, Value: uint32(c.SlidingWindow)})
	}
	cj, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("%w: config: %w", ErrConfig, err)
	}
	kvs = append(kvs, gguf.KV{Key: keyMeshConfig, Value: string(cj)})
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

// addTernary encodes one linear of block i as typ (and its scale tensor when
// scaleTensors is set and typ has no exact scale of its own).
func addTernary(wr *gguf.Writer, i int, lin linearRef, typ gguf.Type, scaleTensors bool) error {
	m := *lin.m
	name := blockTensor(i, lin.part, "weight")
	scaleTensors = scaleTensors && typ != gguf.I2_S
	enc := m
	if scaleTensors {
		cp := *m
		cp.Scale = 1
		enc = &cp
	}
	var data []byte
	var err error
	switch typ {
	case gguf.TQ1_0:
		data, err = enc.EncodeTQ1_0()
	case gguf.TQ2_0:
		data, err = enc.EncodeTQ2_0()
	case gguf.I2_S:
		data, err = enc.EncodeI2S()
	default:
		data, err = encodeTernaryFloat(enc, typ)
	}
	if err != nil {
		return fmt.Errorf("%w: tensor %s (%s): %w", ErrWeights, name, lin.hf, err)
	}
	if err := wr.AddTensor(name, typ, []uint64{uint64(m.Cols), uint64(m.Rows)}, data); err != nil {
		return fmt.Errorf("%w: tensor %s: %w", ErrWeights, name, err)
	}
	if scaleTensors {
		return addFloatTensor(wr, blockTensor(i, lin.part, "scale"), gguf.F32, []uint64{1}, []float32{m.Scale})
	}
	return nil
}

// encodeTernaryFloat writes m as Q8_0 blocks holding the codes T exactly with
// d = fp16(Scale) (0 in all-zero blocks), or as F16 values T*fp16(Scale): a
// form every llama.cpp reads, for widths the ternary types cannot hold.
func encodeTernaryFloat(m *ternary.Matrix, typ gguf.Type) ([]byte, error) {
	d := half.ToFloat16(m.Scale)
	if d&0x7c00 == 0x7c00 || (d&0x7fff == 0 && m.Scale != 0) {
		return nil, fmt.Errorf("scale %v is not representable in fp16", m.Scale)
	}
	row := make([]int8, 0, m.Cols)
	switch typ {
	case gguf.Q8_0:
		const qk = 32
		if m.Cols%qk != 0 {
			return nil, fmt.Errorf("width %d is not a multiple of the Q8_0 block %d", m.Cols, qk)
		}
		out := make([]byte, 0, m.Rows*m.Cols/qk*(2+qk))
		for r := 0; r < m.Rows; r++ {
			row = m.Row(row[:0], r)
			for b := 0; b < m.Cols; b += qk {
				bd := uint16(0)
				for _, t := range row[b : b+qk] {
					if t != 0 {
						bd = d
						break
					}
				}
				out = binary.LittleEndian.AppendUint16(out, bd)
				for _, t := range row[b : b+qk] {
					out = append(out, byte(t))
				}
			}
		}
		return out, nil
	case gguf.F16:
		out := make([]byte, 0, 2*m.Rows*m.Cols)
		neg := d | 0x8000
		for r := 0; r < m.Rows; r++ {
			row = m.Row(row[:0], r)
			for _, t := range row {
				h := uint16(0)
				switch t {
				case 1:
					h = d
				case -1:
					h = neg
				}
				out = binary.LittleEndian.AppendUint16(out, h)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("type %v cannot hold ternary weights", typ)
}

// ParseTernaryType parses a ternary GGUF type name for command lines:
// "tq2_0", "tq1_0" or "i2_s" (any case).
func ParseTernaryType(s string) (gguf.Type, error) {
	switch strings.ToLower(s) {
	case "tq2_0":
		return gguf.TQ2_0, nil
	case "tq1_0":
		return gguf.TQ1_0, nil
	case "i2_s":
		return gguf.I2_S, nil
	}
	return 0, fmt.Errorf("model: ternary GGUF type %q: want tq2_0, tq1_0 or i2_s", s)
}
