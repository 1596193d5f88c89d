package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// ArchBitNet is the only architecture the engine runs (HF "architectures"[0]).
const ArchBitNet = "BitNetForCausalLM"

// ErrConfig reports a missing or inconsistent configuration field.
var ErrConfig = errors.New("model: bad config")

// Config is the model hyper-parameters, named after the Hugging Face
// config.json keys they come from.
type Config struct {
	Architecture      string  // architectures[0], e.g. "BitNetForCausalLM"
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
	HiddenAct         string  // hidden_act: "relu2"
	TieWordEmbeddings bool    // tie_word_embeddings
	BOSTokenID        int     // bos_token_id, -1 when absent
	EOSTokenIDs       []int   // eos_token_id (an int or a list)
}

// Defaults of BitNet's HF configuration for keys a config.json may omit.
const (
	defaultRopeTheta    = 500000.0
	defaultRMSNormEps   = 1e-5
	defaultHiddenAct    = "relu2"
	defaultMaxPositions = 2048
)

// ParseConfig parses a Hugging Face config.json. Shape keys (vocab_size,
// hidden_size, intermediate_size, num_hidden_layers, num_attention_heads) are
// required; the others default like transformers' BitNetConfig. The result is
// validated.
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
	if c.Architecture == "" && p.has("model_type") {
		var mt string
		p.decode("model_type", &mt)
		if mt == "bitnet" {
			c.Architecture = ArchBitNet
		} else {
			c.Architecture = mt
		}
	}
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
	c.HeadDim = p.int("head_dim", false, hd)
	c.MaxPositions = p.int("max_position_embeddings", false, defaultMaxPositions)
	c.RopeTheta = p.float("rope_theta", defaultRopeTheta)
	c.RMSNormEps = float32(p.float("rms_norm_eps", defaultRMSNormEps))
	c.HiddenAct = defaultHiddenAct
	if p.has("hidden_act") {
		p.decode("hidden_act", &c.HiddenAct)
	}
	if p.has("tie_word_embeddings") {
		p.decode("tie_word_embeddings", &c.TieWordEmbeddings)
	}
	c.BOSTokenID = p.int("bos_token_id", false, -1)
	c.EOSTokenIDs = p.ints("eos_token_id")
	p.unsupported("rope_scaling")
	p.unsupported("attention_bias")
	p.unsupported("mlp_bias")
	if p.err != nil {
		return Config{}, p.err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
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
// null or false (rope scaling, biases): computing without it would be wrong.
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

// Validate checks that the configuration describes a model the engine can run.
func (c Config) Validate() error {
	if c.Architecture != ArchBitNet {
		return fmt.Errorf("%w: architecture %q is not supported (want %s)", ErrConfig, c.Architecture, ArchBitNet)
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
	if !(c.RopeTheta > 0) || math.IsInf(c.RopeTheta, 0) {
		return fmt.Errorf("%w: rope_theta = %v must be positive and finite", ErrConfig, c.RopeTheta)
	}
	if !(c.RMSNormEps >= 0) || math.IsInf(float64(c.RMSNormEps), 0) {
		return fmt.Errorf("%w: rms_norm_eps = %v must be non-negative and finite", ErrConfig, c.RMSNormEps)
	}
	if c.HiddenAct != "relu2" {
		return fmt.Errorf("%w: hidden_act %q is not supported (want relu2)", ErrConfig, c.HiddenAct)
	}
	if c.BOSTokenID < -1 || c.BOSTokenID >= c.VocabSize {
		return fmt.Errorf("%w: bos_token_id = %d out of range [0,%d)", ErrConfig, c.BOSTokenID, c.VocabSize)
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
	return fmt.Sprintf("%s vocab=%d hidden=%d inter=%d layers=%d heads=%d/%d head_dim=%d ctx=%d theta=%g eps=%g act=%s tied=%v bos=%d eos=%v",
		c.Architecture, c.VocabSize, c.HiddenSize, c.IntermediateSize, c.NumLayers, c.NumHeads, c.NumKVHeads,
		c.HeadDim, c.MaxPositions, c.RopeTheta, c.RMSNormEps, c.HiddenAct, c.TieWordEmbeddings, c.BOSTokenID, c.EOSTokenIDs)
}
