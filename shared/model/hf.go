package model

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/safetensors"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// quantConfig is config.json's quantization_config for BitNet checkpoints.
type quantConfig struct {
	QuantMethod         string   `json:"quant_method"`
	LinearClass         string   `json:"linear_class"`
	QuantizationMode    string   `json:"quantization_mode"`
	ModulesToNotConvert []string `json:"modules_to_not_convert"`
}

// packed reports whether linears are stored pre-quantised (uint8 + weight_scale).
func (q *quantConfig) packed() bool { return q != nil && q.QuantizationMode == "offline" }

// parseQuantConfig reads quantization_config; nil when absent (master weights).
// Defaults follow transformers' BitNetQuantConfig: linear_class "bitlinear",
// quantization_mode "offline".
func parseQuantConfig(data []byte) (*quantConfig, error) {
	var raw struct {
		Q *quantConfig `json:"quantization_config"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: config.json: quantization_config: %w", ErrConfig, err)
	}
	q := raw.Q
	if q == nil {
		return nil, nil
	}
	if q.QuantMethod != "bitnet" {
		return nil, fmt.Errorf("%w: quantization_config.quant_method %q is not supported (want bitnet)", ErrConfig, q.QuantMethod)
	}
	if q.LinearClass == "" {
		q.LinearClass = "bitlinear"
	}
	if q.QuantizationMode == "" {
		q.QuantizationMode = "offline"
	}
	if q.LinearClass != "bitlinear" && q.LinearClass != "autobitlinear" {
		return nil, fmt.Errorf("%w: quantization_config.linear_class %q is not supported (want autobitlinear or bitlinear)", ErrConfig, q.LinearClass)
	}
	if q.QuantizationMode != "offline" && q.QuantizationMode != "online" {
		return nil, fmt.Errorf("%w: quantization_config.quantization_mode %q is not supported (want offline or online)", ErrConfig, q.QuantizationMode)
	}
	for _, m := range q.ModulesToNotConvert {
		if m != "lm_head" {
			return nil, fmt.Errorf("%w: quantization_config.modules_to_not_convert lists %q: only lm_head may stay in full precision", ErrConfig, m)
		}
	}
	return q, nil
}

// LoadConfigHF reads dir/config.json and, when present, the EOS and BOS ids of
// dir/generation_config.json (which take precedence, as in transformers'
// generate).
func LoadConfigHF(dir string) (Config, error) {
	c, _, err := loadConfigHF(dir)
	return c, err
}

func loadConfigHF(dir string) (Config, *quantConfig, error) {
	path := filepath.Join(dir, "config.json")
	data, err := readSmall(path)
	if err != nil {
		return Config{}, nil, err
	}
	c, err := ParseConfig(data)
	if err != nil {
		return Config{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	q, err := parseQuantConfig(data)
	if err != nil {
		return Config{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	if c.IsEmbedding() {
		if err := embeddingSettings(dir, &c); err != nil {
			return Config{}, nil, err
		}
	}
	gpath := filepath.Join(dir, "generation_config.json")
	g, err := readSmall(gpath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return Config{}, nil, err
	default:
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(g, &raw); err != nil {
			return Config{}, nil, fmt.Errorf("%s: %w", gpath, err)
		}
		p := configParser{raw: raw}
		if p.has("eos_token_id") {
			c.EOSTokenIDs = p.ints("eos_token_id")
		}
		if p.has("bos_token_id") {
			c.BOSTokenID = p.int("bos_token_id", false, -1)
		}
		if p.err != nil {
			return Config{}, nil, fmt.Errorf("%s: %w", gpath, p.err)
		}
		if err := c.Validate(); err != nil {
			return Config{}, nil, fmt.Errorf("%s: %w", gpath, err)
		}
	}
	if f := c.Family(); (f == FamilyQwen3 || f == FamilyGemma3) && !c.ProjNorms {
		// The BitNet embedding models carry a norm per projection; their
		// presence is what marks a Qwen3/Gemma3 checkpoint as BitNet.
		ck, err := safetensors.OpenCheckpoint(dir)
		if err != nil {
			return Config{}, nil, fmt.Errorf("model: %w", err)
		}
		_, _, found := projNormTensor(ck, tensorPrefix(ck)+"layers.0.", LinQ)
		ck.Close()
		switch {
		case found:
			c.ProjNorms = true
		case q == nil:
			return Config{}, nil, fmt.Errorf("model: %s: %w: a %s checkpoint without per-projection norms (%s.norm.weight) or a bitnet quantization_config is a full-precision model, not BitNet b1.58",
				dir, ErrConfig, f, LinearNames[LinQ])
		}
	}
	return c, q, nil
}

// embeddingSettings reads the sentence-transformers files of an embedding
// model (modules.json, the Pooling module's config.json): pooling and
// normalisation. Without them the BitNet embedding models' recipe holds:
// last-token pooling and L2 normalisation.
func embeddingSettings(dir string, c *Config) error {
	data, err := readSmall(filepath.Join(dir, "modules.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var mods []struct {
		Path string `json:"path"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &mods); err != nil {
		return fmt.Errorf("model: %s: %w: %w", filepath.Join(dir, "modules.json"), ErrConfig, err)
	}
	c.NormalizeEmbeddings = false
	for _, m := range mods {
		switch {
		case strings.HasSuffix(m.Type, "Normalize"):
			c.NormalizeEmbeddings = true
		case strings.HasSuffix(m.Type, "Pooling"):
			if !filepath.IsLocal(m.Path) {
				return fmt.Errorf("model: modules.json: %w: pooling path %q leaves the model directory", ErrConfig, m.Path)
			}
			ppath := filepath.Join(dir, m.Path, "config.json")
			pd, err := readSmall(ppath)
			if err != nil {
				return err
			}
			var pc map[string]any
			if err := json.Unmarshal(pd, &pc); err != nil {
				return fmt.Errorf("model: %s: %w: %w", ppath, ErrConfig, err)
			}
			switch {
			case pc["pooling_mode_lasttoken"] == true:
				c.Pooling = PoolLast
			case pc["pooling_mode_mean_tokens"] == true:
				c.Pooling = PoolMean
			default:
				return fmt.Errorf("model: %s: %w: only last-token and mean pooling are supported", ppath, ErrConfig)
			}
		}
	}
	return nil
}

// readSmall reads a JSON side file of at most 16 MiB.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if st.Size() > 16<<20 {
		return nil, fmt.Errorf("model: %s is %d bytes, limit %d", path, st.Size(), 16<<20)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("model: read %s: %w", path, err)
	}
	return b, nil
}

// LoadHF loads a Hugging Face checkpoint directory of any family (see
// Family): config.json (+ generation_config.json, and the
// sentence-transformers modules.json of embedding models) and
// model.safetensors or its shards. Linear weights are either full precision
// (F32/F16/BF16 masters, ternarised with absmean here) or pre-quantised
// (quantization_config offline: packed U8 [out/4, in] plus a one-element
// weight_scale whose meaning linear_class sets). Tensor names follow the
// family (1bitLLM's inner_attn_ln/ffn_layernorm, Gemma3's sandwich norms,
// the embedding models' per-projection norms, with or without the "model."
// prefix); Gemma3's (1+w) norms are stored offset (Config.NormOffset).
// Every tensor's dtype and shape is checked against the config; missing and
// unexpected tensors are errors.
func LoadHF(dir string) (*Weights, error) {
	w, _, err := loadHF(context.Background(), dir, loadSpec{})
	return w, err
}

// loadHF is LoadHF; with head8 the head (the embedding when tied) is
// quantised to int8 rows a chunk at a time and returned instead of its
// float32 copy, as readGGUF does.
func loadHF(ctx context.Context, dir string, spec loadSpec) (*Weights, *kernels.Int8Matrix, error) {
	head8 := spec.head8
	c, q, err := loadConfigHF(dir)
	if err != nil {
		return nil, nil, err
	}
	if err := CheckMemory("loading "+c.String(), c.loadBytes(head8, !q.packed()), spec.budget); err != nil {
		return nil, nil, fmt.Errorf("model: %s: %w", dir, err)
	}
	// Embedding models run no output head and look their embeddings up
	// exactly (see newModel): keep the float embedding.
	head8 = head8 && !c.IsEmbedding()
	ck, err := safetensors.OpenCheckpoint(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("model: %w", err)
	}
	defer ck.Close()
	l := hfLoader{ctx: ctx, ck: ck, cfg: c, q: q, used: map[string]bool{}, head8: head8, prefix: tensorPrefix(ck)}
	w, err := l.load()
	if err != nil {
		return nil, nil, fmt.Errorf("model: %s: %w", dir, err)
	}
	return w, l.h8, nil
}

type hfLoader struct {
	ctx    context.Context // ends the load between tensors
	ck     *safetensors.Checkpoint
	prefix string // "model." (a CausalLM) or "" (a bare backbone, e.g. Qwen3Model)
	cfg    Config
	q      *quantConfig
	mu     sync.Mutex // guards used
	used   map[string]bool
	head8  bool                // quantise the head to h8 instead of float32
	h8     *kernels.Int8Matrix // the int8 head when head8
}

// tensorPrefix is "model." when the checkpoint holds a CausalLM's names
// (model.embed_tokens.weight), "" for a bare backbone (embed_tokens.weight).
func tensorPrefix(ck *safetensors.Checkpoint) string {
	if _, ok := ck.Tensor("embed_tokens.weight"); ok {
		if _, ok := ck.Tensor("model.embed_tokens.weight"); !ok {
			return ""
		}
	}
	return "model."
}

func (l *hfLoader) load() (*Weights, error) {
	c := l.cfg
	h := c.HiddenSize
	p := l.prefix
	w := &Weights{Config: c, Layers: make([]Layer, c.NumLayers)}
	var err error
	if l.head8 && c.TieWordEmbeddings {
		l.h8, err = l.int8Rows(p+"embed_tokens.weight", c.VocabSize, h)
	} else {
		w.Embed, err = l.floats(p+"embed_tokens.weight", c.VocabSize, h)
	}
	if err != nil {
		return nil, err
	}
	if w.Norm, err = l.norm(p+"norm.weight", h, c.NormOffset()); err != nil {
		return nil, err
	}
	if !c.TieWordEmbeddings {
		if l.head8 {
			l.h8, err = l.int8Rows("lm_head.weight", c.VocabSize, h)
		} else {
			w.Head, err = l.floats("lm_head.weight", c.VocabSize, h)
		}
		if err != nil {
			return nil, err
		}
	} else if _, ok := l.ck.Tensor("lm_head.weight"); ok {
		l.used["lm_head.weight"] = true // some tied checkpoints carry a copy; transformers ignores it
	}
	// Layers read concurrently below; used is locked from here on.
	// Layers convert in parallel (ternarising master weights is CPU-bound);
	// the first error in layer order wins.
	errs := make([]error, c.NumLayers)
	parallelFor(c.NumLayers, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			errs[i] = l.layer(&w.Layers[i], fmt.Sprintf("%slayers.%d.", p, i))
		}
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	var extra []string
	for _, n := range l.ck.Names() {
		if !l.used[n] && !strings.HasSuffix(n, "rotary_emb.inv_freq") {
			extra = append(extra, n)
		}
	}
	if len(extra) > 0 {
		if len(extra) > 5 {
			extra = append(extra[:5], fmt.Sprintf("... (%d in all)", len(extra)))
		}
		return nil, fmt.Errorf("%w: unexpected tensors %s", ErrWeights, strings.Join(extra, ", "))
	}
	if err := w.validate(l.h8); err != nil {
		return nil, err
	}
	return w, nil
}

// hfNormNames maps Layer.NormSpecs names to checkpoint names per family.
func hfNormName(f Family, spec string) string {
	switch spec {
	case "attn_sub_norm":
		if f == FamilyBitNetB158 {
			return "self_attn.inner_attn_ln"
		}
		return "self_attn.attn_sub_norm"
	case "ffn_sub_norm":
		if f == FamilyBitNetB158 {
			return "mlp.ffn_layernorm"
		}
		return "mlp.ffn_sub_norm"
	case "post_attention_layernorm": // the FFN input norm
		if f == FamilyGemma3 {
			return "pre_feedforward_layernorm"
		}
		return spec
	case "post_attention_norm": // Gemma3's attention output norm
		return "post_attention_layernorm"
	case "q_norm", "k_norm":
		return "self_attn." + spec
	}
	return spec
}

// projNormTensor finds the per-projection norm of linear i under prefix p:
// <proj>.norm.weight (the BitNet embedding models) or <proj>.rms_norm.weight
// (transformers' BitLinear with use_rms_norm).
func projNormTensor(ck *safetensors.Checkpoint, p string, i int) (string, safetensors.Tensor, bool) {
	for _, suffix := range []string{".norm.weight", ".rms_norm.weight"} {
		name := p + LinearNames[i] + suffix
		if t, ok := ck.Tensor(name); ok {
			return name, t, true
		}
	}
	return "", safetensors.Tensor{}, false
}

func (l *hfLoader) layer(L *Layer, p string) error {
	c := l.cfg
	f := c.Family()
	for _, n := range L.NormSpecs(c) {
		if !n.Want {
			continue
		}
		var v []float32
		var err error
		if strings.HasSuffix(n.Name, ".norm") { // per-projection
			v, err = l.projNorm(p, n)
		} else {
			v, err = l.norm(p+hfNormName(f, n.Name)+".weight", n.N, c.NormOffset())
		}
		if err != nil {
			return err
		}
		*n.V = v
	}
	for i, dst := range L.Linears() {
		out, cols := LinearShape(c, i)
		m, err := l.linear(p+LinearNames[i], out, cols)
		if err != nil {
			return err
		}
		*dst = m
	}
	return nil
}

// norm reads an RMSNorm weight and adds offset (Config.NormOffset).
func (l *hfLoader) norm(name string, n int, offset float32) ([]float32, error) {
	v, err := l.floats(name, n)
	if err != nil || offset == 0 {
		return v, err
	}
	for i := range v {
		v[i] += offset
	}
	return v, nil
}

// projNorm reads the norm of one projection; with use_rms_norm and no
// stored weight it is all ones, as transformers initialises it.
func (l *hfLoader) projNorm(p string, n NormSpec) ([]float32, error) {
	i := slices.Index(LinearNames[:], strings.TrimSuffix(n.Name, ".norm"))
	name, _, ok := projNormTensor(l.ck, p, i)
	if !ok {
		if l.q != nil && l.cfg.Family() != FamilyQwen3 && l.cfg.Family() != FamilyGemma3 {
			v := make([]float32, n.N)
			for j := range v {
				v[j] = 1
			}
			return v, nil
		}
		return nil, fmt.Errorf("%w: missing tensor %s%s.norm.weight", ErrWeights, p, LinearNames[i])
	}
	return l.floats(name, n.N)
}

// tensor returns a tensor by name, marking it used (safe for concurrent
// use); it fails with ctx's error once the load is abandoned.
func (l *hfLoader) tensor(name string) (safetensors.Tensor, error) {
	if err := l.ctx.Err(); err != nil {
		return safetensors.Tensor{}, err
	}
	t, ok := l.ck.Tensor(name)
	if !ok {
		return t, fmt.Errorf("%w: missing tensor %s", ErrWeights, name)
	}
	l.mu.Lock()
	l.used[name] = true
	l.mu.Unlock()
	return t, nil
}

// floats reads a float tensor of the given shape as float32.
func (l *hfLoader) floats(name string, shape ...int) ([]float32, error) {
	t, err := l.floatTensor(name, shape...)
	if err != nil {
		return nil, err
	}
	v, err := t.Float32()
	if err != nil {
		return nil, fmt.Errorf("%w: tensor %s: %w", ErrWeights, name, err)
	}
	return v, nil
}

// floatTensor returns tensor name, checked to have the shape and a float dtype.
func (l *hfLoader) floatTensor(name string, shape ...int) (safetensors.Tensor, error) {
	t, err := l.tensor(name)
	if err != nil {
		return t, err
	}
	if err := checkShape(t, shape); err != nil {
		return t, err
	}
	switch t.DType {
	case "F32", "F16", "BF16":
	default:
		return t, fmt.Errorf("%w: tensor %s has dtype %s, want F32, F16 or BF16", ErrWeights, name, t.DType)
	}
	return t, nil
}

// int8Rows loads a rows x cols float tensor as int8 rows (see
// quantizeInt8Rows), converting a chunk of rows at a time so that no
// float32 copy of the whole tensor exists.
func (l *hfLoader) int8Rows(name string, rows, cols int) (*kernels.Int8Matrix, error) {
	t, err := l.floatTensor(name, rows, cols)
	if err != nil {
		return nil, err
	}
	size := t.DType.Size()
	if len(t.Data) != rows*cols*size {
		return nil, fmt.Errorf("%w: tensor %s: dtype %s shape %v does not match %d data bytes", ErrWeights, name, t.DType, t.Shape, len(t.Data))
	}
	m := newInt8Matrix(rows, cols)
	step := max(1, (1<<20)/cols)
	errs := make([]error, (rows+step-1)/step)
	parallelFor(len(errs), 1, func(lo, hi int) {
		buf := make([]float32, step*cols)
		for k := lo; k < hi; k++ {
			if errs[k] = l.ctx.Err(); errs[k] != nil {
				return
			}
			r0, r1 := k*step, min(rows, (k+1)*step)
			sub := safetensors.Tensor{Name: name, DType: t.DType, Shape: []int{r1 - r0, cols}, Data: t.Data[r0*cols*size : r1*cols*size]}
			x := buf[:(r1-r0)*cols]
			if errs[k] = sub.Float32Into(x); errs[k] != nil {
				return
			}
			quantizeRowsInto(m, x, r0, r1)
		}
	})
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("%w: tensor %s: %w", ErrWeights, name, err)
		}
	}
	return m, nil
}

func checkShape(t safetensors.Tensor, want []int) error {
	ok := len(t.Shape) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = t.Shape[i] == want[i]
	}
	if !ok {
		return fmt.Errorf("%w: tensor %s has shape %v, want %v", ErrWeights, t.Name, t.Shape, want)
	}
	return nil
}

// linear loads one BitLinear weight (out x cols) in either flavour.
func (l *hfLoader) linear(name string, out, cols int) (*ternary.Matrix, error) {
	if !l.q.packed() {
		v, err := l.floats(name+".weight", out, cols)
		if err != nil {
			return nil, err
		}
		m, err := ternary.Quantize(out, cols, v)
		if err != nil {
			return nil, fmt.Errorf("%w: ternarise %s: %w", ErrWeights, name, err)
		}
		return m, nil
	}
	t, err := l.tensor(name + ".weight")
	if err != nil {
		return nil, err
	}
	if t.DType != "U8" && t.DType != "I8" {
		return nil, fmt.Errorf("%w: tensor %s.weight has dtype %s, want U8 (packed ternary, quantization_mode offline)", ErrWeights, name, t.DType)
	}
	if err := checkShape(t, []int{(out + 3) / 4, cols}); err != nil {
		return nil, err
	}
	st, err := l.tensor(name + ".weight_scale")
	if err != nil {
		return nil, err
	}
	if st.NumElements() != 1 {
		return nil, fmt.Errorf("%w: tensor %s has shape %v, want one element", ErrWeights, st.Name, st.Shape)
	}
	sv, err := st.Float32()
	if err != nil {
		return nil, fmt.Errorf("%w: tensor %s: %w", ErrWeights, st.Name, err)
	}
	ws := sv[0]
	if !(ws > 0) || math.IsInf(float64(ws), 0) {
		return nil, fmt.Errorf("%w: tensor %s = %v must be positive and finite", ErrWeights, st.Name, ws)
	}
	scale, err := ternary.ScaleFromHF(ws, l.q.LinearClass)
	if err != nil {
		return nil, fmt.Errorf("%w: tensor %s: %w", ErrWeights, st.Name, err)
	}
	m, err := ternary.FromHFPacked(t.Data, out, cols, scale)
	if err != nil {
		return nil, fmt.Errorf("%w: tensor %s.weight: %w", ErrWeights, name, err)
	}
	return m, nil
}
