package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Hugging Face architectures (config.json "architectures"[0]) the engine runs.
const (
	// ArchBitNet is microsoft/bitnet-b1.58-2B-4T (transformers' BitNetForCausalLM).
	ArchBitNet = "BitNetForCausalLM"
	// ArchBitNetB158 is the 1bitLLM bitnet_b1_58-* custom code (note the lower-case n).
	ArchBitNetB158 = "BitnetForCausalLM"
	// ArchLlama is LlamaForCausalLM with a bitnet quantization_config
	// (HF1BitLLM Llama3-8B-1.58, tiiuae Falcon3-*-1.58bit, Falcon-E).
	ArchLlama = "LlamaForCausalLM"
	// ArchQwen3 is a Qwen3 backbone (BitNet-embedding-0.6B).
	ArchQwen3 = "Qwen3ForCausalLM"
	// ArchGemma3 is a Gemma3 text backbone (BitNet-embedding-270M).
	ArchGemma3 = "Gemma3ForCausalLM"
)

// Family is a model family: one forward-pass recipe and one checkpoint
// layout. docs/families.md lists what differs between them.
type Family string

// The families the engine runs.
const (
	// FamilyBitNet: BitNet b1.58 2B4T. relu² gated FFN, sub-norms before
	// o_proj (attn_sub_norm) and down_proj (ffn_sub_norm).
	FamilyBitNet Family = "bitnet"
	// FamilyBitNetB158: 1bitLLM bitnet_b1_58-large/-3B. SiLU gated FFN,
	// sub-norms named inner_attn_ln and ffn_layernorm, fp16 master weights.
	FamilyBitNetB158 Family = "bitnet-b1.58"
	// FamilyLlama: a LLaMA block whose linears are BitLinear (transformers'
	// bitnet quantization): no sub-norms, SiLU gated FFN; optionally an
	// RMSNorm before every BitLinear (quantization_config.use_rms_norm).
	FamilyLlama Family = "llama"
	// FamilyQwen3: Qwen3 block (q/k norms, head_dim independent of the
	// width) with an RMSNorm before every BitLinear; embedding models.
	FamilyQwen3 Family = "qwen3"
	// FamilyGemma3: Gemma3 text block (GELU-tanh, sqrt(hidden) embedding
	// scale, sandwich norms, (1+w) RMSNorm, query_pre_attn_scalar, sliding
	// window layers) with an RMSNorm before every BitLinear; embedding models.
	FamilyGemma3 Family = "gemma3"
)

// Families lists every family, for messages and tests.
var Families = []Family{FamilyBitNet, FamilyBitNetB158, FamilyLlama, FamilyQwen3, FamilyGemma3}

// familyOf maps an architecture to its family ("" when unknown).
func familyOf(arch string) Family {
	switch arch {
	case ArchBitNet:
		return FamilyBitNet
	case ArchBitNetB158:
		return FamilyBitNetB158
	case ArchLlama:
		return FamilyLlama
	case ArchQwen3, "Qwen3Model":
		return FamilyQwen3
	case ArchGemma3, "Gemma3TextModel", "Gemma3Model":
		return FamilyGemma3
	}
	return ""
}

// FamilyOf names the family of an architecture as model registries record
// it: a Hugging Face architecture (BitnetForCausalLM), a config.json
// model_type (bitnet, qwen3, gemma3_text) or a GGUF general.architecture
// (bitnet, bitnet-b1.58, bitnet-25, llama, qwen3, gemma3). "" when unknown.
// A bare "llama" model_type is the llama family (1bitLLM checkpoints are
// recorded as bitnet-b1.58, the name bitnet.cpp's GGUF files use).
func FamilyOf(arch string) Family {
	switch strings.ToLower(arch) {
	case "bitnet-b1.58", "bitnet_b1_58":
		return FamilyBitNetB158
	case "bitnet-25", "bitnet":
		return FamilyBitNet
	case "llama":
		return FamilyLlama
	case "qwen3":
		return FamilyQwen3
	case "gemma3", "gemma3_text":
		return FamilyGemma3
	}
	if f := familyOf(arch); f != "" {
		return f
	}
	return familyOf(archOfModelType(arch))
}

// archOfModelType maps a config.json model_type to the canonical
// architecture when "architectures" is absent.
func archOfModelType(mt string) string {
	switch mt {
	case "bitnet":
		return ArchBitNet
	case "llama":
		return ArchLlama
	case "qwen3":
		return ArchQwen3
	case "gemma3_text", "gemma3":
		return ArchGemma3
	}
	return mt
}

// Activations of the gated FFN (config hidden_act / hidden_activation).
const (
	ActReLU2    = "relu2"             // relu(g)^2 * u (BitNet 2B4T)
	ActSiLU     = "silu"              // silu(g) * u (LLaMA, Qwen3, 1bitLLM)
	ActGELUTanh = "gelu_pytorch_tanh" // gelu_tanh(g) * u (Gemma3)
)

// Pooling strategies of embedding models.
const (
	PoolNone = ""     // a causal LM: no sentence embedding
	PoolLast = "last" // the last token's final hidden state (BitNet embedding models)
	PoolMean = "mean" // the mean over the tokens
)

// ErrConfig reports a missing or inconsistent configuration field.
var ErrConfig = errors.New("model: bad config")

// RopeScaling is config.json's rope_scaling for the types the engine runs
// ("linear" and "llama3", transformers' modeling_rope_utils), or, from a
// GGUF file without this project's config, llama.cpp's per-frequency
// factors (type "factors": the rope_freqs tensor its converters write for
// llama3 scaling).
type RopeScaling struct {
	Type                string  // "linear", "llama3" or "factors"
	Factor              float64 // factor
	LowFreqFactor       float64 // low_freq_factor (llama3)
	HighFreqFactor      float64 // high_freq_factor (llama3)
	OriginalMaxPosition int     // original_max_position_embeddings (llama3)
	// Factors divide the inverse frequencies one by one (type "factors",
	// head_dim/2 of them; llama.cpp's freq_factors), then Factor divides all.
	Factors []float32 `json:",omitempty"`
}

// Config is the model hyper-parameters, named after the Hugging Face
// config.json keys they come from. The zero value of every field added for
// the other families means "as BitNet 2B4T", so a Config written for 2B4T
// (Architecture ArchBitNet) keeps its meaning.
type Config struct {
	Architecture      string  // architectures[0], e.g. "BitNetForCausalLM"; Family() derives from it
	VocabSize         int     // vocab_size
	HiddenSize        int     // hidden_size
	IntermediateSize  int     // intermediate_size
	NumLayers         int     // num_hidden_layers
	NumHeads          int     // num_attention_heads
	NumKVHeads        int     // num_key_value_heads (default NumHeads)
	HeadDim           int     // head_dim (default HiddenSize/NumHeads)
	MaxPositions      int     // max_position_embeddings
	RopeTheta         float64 // rope_theta
	RMSNormEps        float32 // rms_norm_eps
	HiddenAct         string  // hidden_act (hidden_activation for Gemma3): relu2, silu or gelu_pytorch_tanh
	TieWordEmbeddings bool    // tie_word_embeddings
	BOSTokenID        int     // bos_token_id, -1 when absent
	EOSTokenIDs       []int   // eos_token_id (an int or a list)

	// ProjNorms: every BitLinear normalises its own input with an RMSNorm
	// of its own (Layer.ProjNorm): the BitNet embedding models' "SubLN"
	// (q_proj.norm.weight, ...) and transformers' BitLinear with
	// quantization_config.use_rms_norm.
	ProjNorms bool
	// ProjNormEps is the epsilon of those norms (default RMSNormEps).
	ProjNormEps float32
	// QueryPreAttnScalar sets the attention scale to its -1/2 power
	// (Gemma3 query_pre_attn_scalar); 0 means head_dim.
	QueryPreAttnScalar float64
	// SlidingWindow is the attention window of sliding layers (Gemma3
	// sliding_window): a query attends to the keys less than SlidingWindow
	// positions before it, itself included. 0: none.
	SlidingWindow int
	// SlidingLayers marks the layers that use SlidingWindow (Gemma3
	// layer_types / sliding_window_pattern); nil: none.
	SlidingLayers []bool
	// RopeLocalTheta is the RoPE base of sliding layers (Gemma3
	// rope_local_base_freq); 0: RopeTheta.
	RopeLocalTheta float64
	// RopeScaling of the (global) rotary embedding; nil: none.
	RopeScaling *RopeScaling
	// Pooling of the final hidden states into one embedding (PoolLast for
	// the BitNet embedding models); PoolNone for causal LMs.
	Pooling string
	// NormalizeEmbeddings L2-normalises pooled embeddings.
	NormalizeEmbeddings bool
	// EmbedPrefix and EmbedSuffix are the tokens put around every text
	// embedded (the tokenizer's post-processor: Gemma's <bos> before, the
	// Qwen3 embedding models' <|endoftext|> after, which last-token pooling
	// reads). See EmbedIDs.
	EmbedPrefix, EmbedSuffix []int
}

// Family returns the model family of the architecture (FamilyBitNet for
// ArchBitNet), "" when unknown.
func (c Config) Family() Family { return familyOf(c.Architecture) }

// SubNorms reports whether the blocks have sub-norms before o_proj and
// down_proj (attn_sub_norm/ffn_sub_norm, inner_attn_ln/ffn_layernorm).
func (c Config) SubNorms() bool {
	f := c.Family()
	return f == FamilyBitNet || f == FamilyBitNetB158
}

// QKNorm reports whether queries and keys are RMS-normalised per head
// before RoPE (Qwen3, Gemma3).
func (c Config) QKNorm() bool {
	f := c.Family()
	return f == FamilyQwen3 || f == FamilyGemma3
}

// SandwichNorms reports whether attention and FFN outputs are normalised
// before the residual add (Gemma3 post_attention_layernorm and
// post_feedforward_layernorm; its FFN input norm is pre_feedforward_layernorm).
func (c Config) SandwichNorms() bool { return c.Family() == FamilyGemma3 }

// NormOffset is added to the stored weight of the family's own RMSNorms
// (Gemma3RMSNorm computes x_hat * (1 + w)): loaders add it so that every
// Weights norm multiplies by its stored value, exporters subtract it. The
// per-projection norms (ProjNorm) are plain RMSNorms and never offset.
func (c Config) NormOffset() float32 {
	if c.Family() == FamilyGemma3 {
		return 1
	}
	return 0
}

// EmbedScale is the factor applied to token embeddings (Gemma3:
// sqrt(hidden_size) in float32; else 1).
func (c Config) EmbedScale() float32 {
	if c.Family() == FamilyGemma3 {
		return float32(math.Sqrt(float64(c.HiddenSize)))
	}
	return 1
}

// AttnScale is the factor of q.k in attention: query_pre_attn_scalar^-1/2
// when set, else head_dim^-1/2.
func (c Config) AttnScale() float32 {
	if c.QueryPreAttnScalar > 0 {
		return float32(1 / math.Sqrt(c.QueryPreAttnScalar))
	}
	return float32(1 / math.Sqrt(float64(c.HeadDim)))
}

// ProjEps returns the epsilon of the per-projection norms.
func (c Config) ProjEps() float32 {
	if c.ProjNormEps > 0 {
		return c.ProjNormEps
	}
	return c.RMSNormEps
}

// Sliding reports whether layer l attends within SlidingWindow.
func (c Config) Sliding(l int) bool {
	return c.SlidingWindow > 0 && l < len(c.SlidingLayers) && c.SlidingLayers[l]
}

// IsEmbedding reports whether the model produces sentence embeddings.
func (c Config) IsEmbedding() bool { return c.Pooling != PoolNone }

// familyDefaults are the transformers config class defaults of a family
// for keys a config.json may omit.
type familyDefaults struct {
	ropeTheta    float64
	eps          float64
	act          string
	maxPositions int
	tied         bool
}

func defaultsOf(f Family) familyDefaults {
	switch f {
	case FamilyBitNet: // BitNetConfig
		return familyDefaults{500000, 1e-5, ActReLU2, 2048, false}
	case FamilyBitNetB158: // 1bitLLM's BitnetConfig (a LlamaConfig)
		return familyDefaults{10000, 1e-6, ActSiLU, 2048, false}
	case FamilyQwen3: // Qwen3Config
		return familyDefaults{10000, 1e-6, ActSiLU, 32768, false}
	case FamilyGemma3: // Gemma3TextConfig
		return familyDefaults{1000000, 1e-6, ActGELUTanh, 131072, true}
	}
	return familyDefaults{10000, 1e-6, ActSiLU, 2048, false} // LlamaConfig
}

// ParseConfig parses a Hugging Face config.json. Shape keys (vocab_size,
// hidden_size, intermediate_size, num_hidden_layers, num_attention_heads) are
// required; the others default like the family's transformers config class.
// Features the engine does not run (biases, logit soft-capping, unknown RoPE
// scaling) are errors. The result is validated.
func ParseConfig(data []byte) (Config, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return Config{}, fmt.Errorf("%w: config.json: %w", ErrConfig, err)
	}
	c := Config{BOSTokenID: -1}
	p := configParser{raw: raw}
	var archs []string
	if p.has("architectures") {
		p.decode("architectures", &archs)
		if len(archs) > 0 {
			c.Architecture = archs[0]
		}
	}
	var mt string
	if p.has("model_type") {
		p.decode("model_type", &mt)
	}
	if c.Architecture == "" {
		c.Architecture = archOfModelType(mt)
	}
	// Sentence-transformers save the bare backbone (Qwen3Model,
	// Gemma3TextModel): run it with the family's causal LM recipe.
	switch familyOf(c.Architecture) {
	case FamilyQwen3:
		c.Architecture = ArchQwen3
	case FamilyGemma3:
		c.Architecture = ArchGemma3
	}
	fam := c.Family()
	d := defaultsOf(fam)
	c.VocabSize = p.int("vocab_size", true, 0)
	c.HiddenSize = p.int("hidden_size", true, 0)
	c.IntermediateSize = p.int("intermediate_size", true, 0)
	c.NumLayers = p.int("num_hidden_layers", true, 0)
	c.NumHeads = p.int("num_attention_heads", true, 0)
	c.NumKVHeads = p.int("num_key_value_heads", false, c.NumHeads)
	hd := 0
	if c.NumHeads > 0 {
		hd = c.HiddenSize / c.NumHeads
	}
	if fam == FamilyGemma3 {
		hd = 256 // Gemma3TextConfig's head_dim default
	}
	c.HeadDim = p.int("head_dim", false, hd)
	c.MaxPositions = p.int("max_position_embeddings", false, d.maxPositions)
	c.RopeTheta = p.float("rope_theta", d.ropeTheta)
	c.RMSNormEps = float32(p.float("rms_norm_eps", d.eps))
	c.HiddenAct = d.act
	for _, k := range []string{"hidden_act", "hidden_activation"} {
		if p.has(k) {
			p.decode(k, &c.HiddenAct)
		}
	}
	if c.HiddenAct == "swish" {
		c.HiddenAct = ActSiLU
	}
	c.TieWordEmbeddings = d.tied
	if p.has("tie_word_embeddings") {
		p.decode("tie_word_embeddings", &c.TieWordEmbeddings)
	}
	c.BOSTokenID = p.int("bos_token_id", false, -1)
	c.EOSTokenIDs = p.ints("eos_token_id")
	c.RopeScaling = p.ropeScaling("rope_scaling")
	if p.has("rope_parameters") { // transformers >= 5 moved rope_theta here
		c.parseRopeParameters(&p)
	}
	p.unsupported("attention_bias")
	p.unsupported("mlp_bias")
	p.unsupported("attn_logit_softcapping")
	p.unsupported("final_logit_softcapping")
	if p.has("quantization_config") {
		c.parseQuantization(&p)
	} else if fam == FamilyLlama {
		p.fail(ArchLlama + " without a bitnet quantization_config is a full-precision model, not BitNet b1.58")
	}
	switch fam {
	case FamilyQwen3:
		p.unsupported("use_sliding_window")
		c.Pooling, c.NormalizeEmbeddings = PoolLast, true
	case FamilyGemma3:
		c.QueryPreAttnScalar = p.float("query_pre_attn_scalar", 256)
		c.RopeLocalTheta = p.float("rope_local_base_freq", 10000)
		c.SlidingWindow = p.int("sliding_window", false, 4096)
		c.SlidingLayers = p.slidingLayers(c.NumLayers)
		c.Pooling, c.NormalizeEmbeddings = PoolLast, true
	case FamilyBitNetB158:
		if p.has("weight_bits") && p.int("weight_bits", false, 1) != 1 {
			p.fail("weight_bits must be 1 (ternary)")
		}
		if p.has("input_bits") && p.int("input_bits", false, 8) != 8 {
			p.fail("input_bits must be 8")
		}
	}
	if p.err != nil {
		return Config{}, p.err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// parseRopeParameters reads transformers 5's rope_parameters: one object
// ({rope_type, rope_theta, ...}) or one per layer type (Gemma3).
func (c *Config) parseRopeParameters(p *configParser) {
	var per map[string]json.RawMessage
	p.decode("rope_parameters", &per)
	if p.err != nil {
		return
	}
	read := func(raw json.RawMessage) (float64, *RopeScaling) {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			p.fail(fmt.Sprintf("rope_parameters: %v", err))
			return 0, nil
		}
		q := configParser{raw: obj}
		theta := q.float("rope_theta", 0)
		s := q.ropeScaling("")
		if q.err != nil {
			p.fail(fmt.Sprintf("rope_parameters: %v", q.err))
		}
		return theta, s
	}
	if full, ok := per["full_attention"]; ok {
		if th, s := read(full); th > 0 {
			c.RopeTheta, c.RopeScaling = th, s
		}
		if sl, ok := per["sliding_attention"]; ok {
			if th, _ := read(sl); th > 0 {
				c.RopeLocalTheta = th
			}
		}
		return
	}
	if th, s := read(p.raw["rope_parameters"]); th > 0 {
		c.RopeTheta, c.RopeScaling = th, s
	}
}

// parseQuantization reads the parts of quantization_config that shape the
// forward pass (use_rms_norm, rms_norm_eps); the loader reads the storage
// parts (linear_class, quantization_mode).
func (c *Config) parseQuantization(p *configParser) {
	var obj map[string]json.RawMessage
	p.decode("quantization_config", &obj)
	if p.err != nil {
		return
	}
	q := configParser{raw: obj}
	var method string
	if q.has("quant_method") {
		q.decode("quant_method", &method)
	}
	if method != "bitnet" && q.err == nil {
		q.fail(fmt.Sprintf("quantization_config.quant_method %q is not supported (want bitnet)", method))
	}
	if q.has("use_rms_norm") {
		q.decode("use_rms_norm", &c.ProjNorms)
	}
	if c.ProjNorms {
		c.ProjNormEps = float32(q.float("rms_norm_eps", 1e-6)) // BitNetQuantConfig's default
	}
	if q.err != nil && p.err == nil {
		p.err = q.err
	}
}

// configParser decodes config.json fields, keeping the first error.
type configParser struct {
	raw map[string]json.RawMessage
	err error
}

func (p *configParser) has(key string) bool {
	v, ok := p.raw[key]
	return ok && string(v) != "null"
}

func (p *configParser) fail(msg string) {
	if p.err == nil {
		p.err = fmt.Errorf("%w: %s", ErrConfig, msg)
	}
}

func (p *configParser) decode(key string, dst any) {
	if p.err != nil {
		return
	}
	if err := json.Unmarshal(p.raw[key], dst); err != nil {
		p.err = fmt.Errorf("%w: field %s: %w", ErrConfig, key, err)
	}
}

func (p *configParser) int(key string, required bool, def int) int {
	if !p.has(key) {
		if required && p.err == nil {
			p.err = fmt.Errorf("%w: missing field %s", ErrConfig, key)
		}
		return def
	}
	var f float64
	p.decode(key, &f)
	if p.err == nil && (f != math.Trunc(f) || math.Abs(f) > 1<<40) {
		p.err = fmt.Errorf("%w: field %s = %v is not an integer", ErrConfig, key, f)
	}
	return int(f)
}

func (p *configParser) float(key string, def float64) float64 {
	if !p.has(key) {
		return def
	}
	var f float64
	p.decode(key, &f)
	return f
}

// unsupported fails for a feature key that is present with a value other than
// null or false (biases, soft-capping): computing without it would be wrong.
func (p *configParser) unsupported(key string) {
	if p.err != nil || !p.has(key) || string(p.raw[key]) == "false" {
		return
	}
	p.err = fmt.Errorf("%w: %s = %s is not supported", ErrConfig, key, p.raw[key])
}

// ints decodes an int or a list of ints; nil when absent.
func (p *configParser) ints(key string) []int {
	if !p.has(key) || p.err != nil {
		return nil
	}
	var one int
	if err := json.Unmarshal(p.raw[key], &one); err == nil {
		return []int{one}
	}
	var list []int
	p.decode(key, &list)
	return list
}

// ropeScaling decodes a rope_scaling object (key "" reads the parser's own
// object, as rope_parameters holds it): nil for none/default, the linear and
// llama3 types, an error for the others.
func (p *configParser) ropeScaling(key string) *RopeScaling {
	obj := p.raw
	if key != "" {
		if !p.has(key) || p.err != nil {
			return nil
		}
		if err := json.Unmarshal(p.raw[key], &obj); err != nil {
			p.err = fmt.Errorf("%w: field %s: %w", ErrConfig, key, err)
			return nil
		}
	}
	q := configParser{raw: obj}
	var typ string
	for _, k := range []string{"rope_type", "type"} {
		if q.has(k) {
			q.decode(k, &typ)
			break
		}
	}
	var s *RopeScaling
	switch typ {
	case "", "default":
	case "linear":
		s = &RopeScaling{Type: typ, Factor: q.float("factor", 1)}
	case "llama3":
		s = &RopeScaling{Type: typ, Factor: q.float("factor", 8), LowFreqFactor: q.float("low_freq_factor", 1),
			HighFreqFactor: q.float("high_freq_factor", 4), OriginalMaxPosition: q.int("original_max_position_embeddings", false, 8192)}
	default:
		q.fail(fmt.Sprintf("rope scaling type %q is not supported (want linear or llama3)", typ))
	}
	if q.err != nil && p.err == nil {
		p.err = fmt.Errorf("%s: %w", strings.TrimSpace("field "+key), q.err)
	}
	return s
}

// slidingLayers reads Gemma3's layer_types (a list of "sliding_attention"
// and "full_attention"), or else its sliding_window_pattern (every n-th
// layer is global; default 6).
func (p *configParser) slidingLayers(layers int) []bool {
	if layers <= 0 || layers > 1<<24 || p.err != nil {
		return nil
	}
	out := make([]bool, layers)
	if p.has("layer_types") {
		var types []string
		p.decode("layer_types", &types)
		if p.err == nil && len(types) != layers {
			p.fail(fmt.Sprintf("layer_types has %d entries, want num_hidden_layers = %d", len(types), layers))
		}
		for i, t := range types {
			switch t {
			case "sliding_attention":
				if i < layers {
					out[i] = true
				}
			case "full_attention":
			default:
				p.fail(fmt.Sprintf("layer_types[%d] = %q is not supported", i, t))
			}
		}
		return out
	}
	n := p.int("sliding_window_pattern", false, 6)
	if n <= 0 {
		p.fail("sliding_window_pattern must be positive")
		return nil
	}
	for i := range out {
		out[i] = (i+1)%n != 0
	}
	return out
}

// Validate checks that the configuration describes a model the engine can run.
func (c Config) Validate() error {
	if c.Family() == "" {
		return fmt.Errorf("%w: architecture %q is not supported (want one of %s, %s, %s, %s, %s)", ErrConfig,
			c.Architecture, ArchBitNet, ArchBitNetB158, ArchLlama, ArchQwen3, ArchGemma3)
	}
	pos := []struct {
		name string
		v    int
	}{
		{"vocab_size", c.VocabSize}, {"hidden_size", c.HiddenSize},
		{"intermediate_size", c.IntermediateSize}, {"num_hidden_layers", c.NumLayers},
		{"num_attention_heads", c.NumHeads}, {"num_key_value_heads", c.NumKVHeads},
		{"head_dim", c.HeadDim}, {"max_position_embeddings", c.MaxPositions},
	}
	for _, f := range pos {
		if f.v <= 0 {
			return fmt.Errorf("%w: %s = %d must be positive", ErrConfig, f.name, f.v)
		}
		if f.v > MaxDim {
			return fmt.Errorf("%w: %s = %d exceeds the limit %d", ErrConfig, f.name, f.v, MaxDim)
		}
	}
	if err := c.checkShapeLimits(); err != nil {
		return err
	}
	if c.NumHeads%c.NumKVHeads != 0 {
		return fmt.Errorf("%w: num_attention_heads = %d is not a multiple of num_key_value_heads = %d", ErrConfig, c.NumHeads, c.NumKVHeads)
	}
	if c.HeadDim%2 != 0 {
		return fmt.Errorf("%w: head_dim = %d must be even for rotary embeddings", ErrConfig, c.HeadDim)
	}
	if int64(c.NumHeads)*int64(c.HeadDim) > 1<<24 {
		return fmt.Errorf("%w: num_attention_heads*head_dim = %d exceeds the limit %d", ErrConfig, int64(c.NumHeads)*int64(c.HeadDim), 1<<24)
	}
	for _, th := range []struct {
		name string
		v    float64
	}{{"rope_theta", c.RopeTheta}, {"rope_local_base_freq", c.RopeLocalTheta}} {
		if th.name == "rope_local_base_freq" && th.v == 0 {
			continue
		}
		if !(th.v > 0) || math.IsInf(th.v, 0) {
			return fmt.Errorf("%w: %s = %v must be positive and finite", ErrConfig, th.name, th.v)
		}
	}
	for _, e := range []struct {
		name string
		v    float32
	}{{"rms_norm_eps", c.RMSNormEps}, {"quantization_config.rms_norm_eps", c.ProjNormEps}} {
		if !(e.v >= 0) || math.IsInf(float64(e.v), 0) {
			return fmt.Errorf("%w: %s = %v must be non-negative and finite", ErrConfig, e.name, e.v)
		}
	}
	switch c.HiddenAct {
	case ActReLU2, ActSiLU, ActGELUTanh:
	default:
		return fmt.Errorf("%w: hidden_act %q is not supported (want %s, %s or %s)", ErrConfig, c.HiddenAct, ActReLU2, ActSiLU, ActGELUTanh)
	}
	if q := c.QueryPreAttnScalar; q < 0 || math.IsInf(q, 0) || math.IsNaN(q) {
		return fmt.Errorf("%w: query_pre_attn_scalar = %v must be positive and finite", ErrConfig, q)
	}
	if c.SlidingWindow < 0 {
		return fmt.Errorf("%w: sliding_window = %d must not be negative", ErrConfig, c.SlidingWindow)
	}
	if c.SlidingLayers != nil && len(c.SlidingLayers) != c.NumLayers {
		return fmt.Errorf("%w: %d sliding-layer flags, want num_hidden_layers = %d", ErrConfig, len(c.SlidingLayers), c.NumLayers)
	}
	if s := c.RopeScaling; s != nil {
		if !(s.Factor >= 1) || math.IsInf(s.Factor, 0) {
			return fmt.Errorf("%w: rope_scaling.factor = %v must be >= 1 and finite", ErrConfig, s.Factor)
		}
		switch s.Type {
		case "linear":
		case "factors":
			if len(s.Factors) != c.HeadDim/2 {
				return fmt.Errorf("%w: %d rope frequency factors, want head_dim/2 = %d", ErrConfig, len(s.Factors), c.HeadDim/2)
			}
			for i, f := range s.Factors {
				if !(f > 0) || math.IsInf(float64(f), 0) {
					return fmt.Errorf("%w: rope frequency factor %d = %v must be positive and finite", ErrConfig, i, f)
				}
			}
		case "llama3":
			if !(s.LowFreqFactor > 0) || !(s.HighFreqFactor > s.LowFreqFactor) || math.IsInf(s.HighFreqFactor, 0) || s.OriginalMaxPosition <= 0 {
				return fmt.Errorf("%w: rope_scaling llama3 wants 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0 (got %v, %v, %d)",
					ErrConfig, s.LowFreqFactor, s.HighFreqFactor, s.OriginalMaxPosition)
			}
		default:
			return fmt.Errorf("%w: rope scaling type %q is not supported", ErrConfig, s.Type)
		}
	}
	switch c.Pooling {
	case PoolNone, PoolLast, PoolMean:
	default:
		return fmt.Errorf("%w: pooling %q is not supported (want %s or %s)", ErrConfig, c.Pooling, PoolLast, PoolMean)
	}
	if c.BOSTokenID < -1 || c.BOSTokenID >= c.VocabSize {
		return fmt.Errorf("%w: bos_token_id = %d out of range [0,%d)", ErrConfig, c.BOSTokenID, c.VocabSize)
	}
	for _, id := range append(slices.Clip(c.EmbedPrefix), c.EmbedSuffix...) {
		if id < 0 || id >= c.VocabSize {
			return fmt.Errorf("%w: embedding prefix/suffix token %d out of range [0,%d)", ErrConfig, id, c.VocabSize)
		}
	}
	for _, id := range c.EOSTokenIDs {
		if id < 0 || id >= c.VocabSize {
			return fmt.Errorf("%w: eos_token_id %d out of range [0,%d)", ErrConfig, id, c.VocabSize)
		}
	}
	return nil
}

// QDim is the width of the attention output: NumHeads*HeadDim.
func (c Config) QDim() int { return c.NumHeads * c.HeadDim }

// KVDim is the width of keys and values: NumKVHeads*HeadDim.
func (c Config) KVDim() int { return c.NumKVHeads * c.HeadDim }

// String formats the configuration for logs.
func (c Config) String() string {
	s := fmt.Sprintf("%s vocab=%d hidden=%d inter=%d layers=%d heads=%d/%d head_dim=%d ctx=%d theta=%g eps=%g act=%s tied=%v bos=%d eos=%v",
		c.Architecture, c.VocabSize, c.HiddenSize, c.IntermediateSize, c.NumLayers, c.NumHeads, c.NumKVHeads,
		c.HeadDim, c.MaxPositions, c.RopeTheta, c.RMSNormEps, c.HiddenAct, c.TieWordEmbeddings, c.BOSTokenID, c.EOSTokenIDs)
	if f := c.Family(); f != FamilyBitNet {
		s += fmt.Sprintf(" family=%s", f)
	}
	if c.ProjNorms {
		s += fmt.Sprintf(" proj_norms(eps=%g)", c.ProjEps())
	}
	if c.QueryPreAttnScalar > 0 {
		s += fmt.Sprintf(" query_pre_attn_scalar=%g", c.QueryPreAttnScalar)
	}
	if c.SlidingWindow > 0 {
		n := 0
		for _, b := range c.SlidingLayers {
			if b {
				n++
			}
		}
		s += fmt.Sprintf(" sliding=%d(%d layers, theta %g)", c.SlidingWindow, n, c.RopeLocalTheta)
	}
	if r := c.RopeScaling; r != nil {
		s += fmt.Sprintf(" rope_scaling=%s(x%g)", r.Type, r.Factor)
	}
	if c.Pooling != PoolNone {
		s += fmt.Sprintf(" pooling=%s normalize=%v", c.Pooling, c.NormalizeEmbeddings)
	}
	return s
}

// LinearShapes returns the distinct shapes (out x in) of the model's
// BitLinear matrices, q, k/v, o, gate/up and down: what kernel plans are
// measured on (kernels.MeasureConfig.Shapes).
func (c Config) LinearShapes() [][2]int {
	var out [][2]int
	for _, s := range c.layerShapes() {
		if s[0] > 0 && s[1] > 0 && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// layerShapes returns the shapes (out x in) of one layer's BitLinear
// matrices: q, k, v, o, gate, up, down.
func (c Config) layerShapes() [7][2]int {
	kv := c.NumKVHeads
	if kv <= 0 {
		kv = c.NumHeads
	}
	hd := c.HeadDim
	if hd <= 0 && c.NumHeads > 0 {
		hd = c.HiddenSize / c.NumHeads
	}
	q, k, h, in := c.NumHeads*hd, kv*hd, c.HiddenSize, c.IntermediateSize
	return [7][2]int{{q, h}, {k, h}, {k, h}, {h, q}, {in, h}, {in, h}, {h, in}}
}
