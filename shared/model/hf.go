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
	"strings"
	"sync"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/safetensors"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// quantConfig is config.json's quantization_config for BitNet checkpoints.
type quantConfig struct {
	QuantMethod      string `json:"quant_method"`
	LinearClass      string `json:"linear_class"`
	QuantizationMode string `json:"quantization_mode"`
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
	return c, q, nil
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

// LoadHF loads a Hugging Face BitNetForCausalLM directory: config.json
// (+ generation_config.json) and model.safetensors or its shards. Linear
// weights are either full precision (F32/F16/BF16, ternarised with absmean
// here) or pre-quantised (quantization_config offline: packed U8 [out/4, in]
// plus a one-element weight_scale). Every tensor's dtype and shape is checked
// against the config; missing and unexpected tensors are errors.
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
	ck, err := safetensors.OpenCheckpoint(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("model: %w", err)
	}
	defer ck.Close()
	l := hfLoader{ctx: ctx, ck: ck, cfg: c, q: q, used: map[string]bool{}, head8: head8}
	w, err := l.load()
	if err != nil {
		return nil, nil, fmt.Errorf("model: %s: %w", dir, err)
	}
	return w, l.h8, nil
}

type hfLoader struct {
	ctx   context.Context // ends the load between tensors
	ck    *safetensors.Checkpoint
	cfg   Config
	q     *quantConfig
	mu    sync.Mutex // guards used
	used  map[string]bool
	head8 bool                // quantise the head to h8 instead of float32
	h8    *kernels.Int8Matrix // the int8 head when head8
}

func (l *hfLoader) load() (*Weights, error) {
	c := l.cfg
	h := c.HiddenSize
	w := &Weights{Config: c, Layers: make([]Layer, c.NumLayers)}
	var err error
	if l.head8 && c.TieWordEmbeddings {
		l.h8, err = l.int8Rows("model.embed_tokens.weight", c.VocabSize, h)
	} else {
		w.Embed, err = l.floats("model.embed_tokens.weight", c.VocabSize, h)
	}
	if err != nil {
		return nil, err
	}
	if w.Norm, err = l.floats("model.norm.weight", h); err != nil {
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
			errs[i] = l.layer(&w.Layers[i], fmt.Sprintf("model.layers.%d.", i))
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

func (l *hfLoader) layer(L *Layer, p string) error {
	c := l.cfg
	h, qd, kvd, in := c.HiddenSize, c.QDim(), c.KVDim(), c.IntermediateSize
	norms := []struct {
		name string
		dst  *[]float32
		n    int
	}{
		{"input_layernorm.weight", &L.AttnNorm, h},
		{"self_attn.attn_sub_norm.weight", &L.AttnSubNorm, qd},
		{"post_attention_layernorm.weight", &L.FFNNorm, h},
		{"mlp.ffn_sub_norm.weight", &L.FFNSubNorm, in},
	}
	for _, n := range norms {
		v, err := l.floats(p+n.name, n.n)
		if err != nil {
			return err
		}
		*n.dst = v
	}
	lins := []struct {
		name      string
		dst       **ternary.Matrix
		out, cols int
	}{
		{"self_attn.q_proj", &L.Q, qd, h}, {"self_attn.k_proj", &L.K, kvd, h},
		{"self_attn.v_proj", &L.V, kvd, h}, {"self_attn.o_proj", &L.O, h, qd},
		{"mlp.gate_proj", &L.Gate, in, h}, {"mlp.up_proj", &L.Up, in, h},
		{"mlp.down_proj", &L.Down, h, in},
	}
	for _, lin := range lins {
		m, err := l.linear(p+lin.name, lin.out, lin.cols)
		if err != nil {
			return err
		}
		*lin.dst = m
	}
	return nil
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
