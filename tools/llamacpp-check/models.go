package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// variant is one GGUF file that models writes.
type variant struct {
	name   string
	opts   []model.GGUFOption
	zeroFF bool // zero every ffn_down
}

func variants() []variant {
	return []variant{
		{name: "tq2_0", opts: []model.GGUFOption{model.WithTernaryType(gguf.TQ2_0)}},
		{name: "tq1_0", opts: []model.GGUFOption{model.WithTernaryType(gguf.TQ1_0)}},
		{name: "tq2_0-scale", opts: []model.GGUFOption{model.WithTernaryType(gguf.TQ2_0), model.WithScaleTensors(true)}},
		{name: "tq2_0-noffn", opts: []model.GGUFOption{model.WithTernaryType(gguf.TQ2_0)}, zeroFF: true},
	}
}

func runModels(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("models", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "output directory (required)")
	hf := fs.String("hf", "", "Hugging Face model directory (default: random weights)")
	tokPath := fs.String("tokenizer", "testdata/tokenizer/opticks-bpe600.json", "tokenizer.json for random weights")
	seed := fs.Uint64("seed", 1, "seed of random weights")
	family := fs.String("family", "bitnet", "family of random weights: bitnet (2B4T), bitnet-b1.58 (1bitLLM, SiLU) or llama (no sub-norms, SiLU)")
	bitnetCpp := fs.Bool("bitnetcpp", false, "write bitnet.cpp's files instead: i2_s.gguf (architecture bitnet-b1.58) and f32.gguf (for its llama-quantize)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("models: -out is required\n%s", usage)
	}
	w, tok, err := sourceWeights(*hf, *tokPath, *seed, *family)
	if err != nil {
		return fmt.Errorf("models: %w", err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("models: %w", err)
	}
	if *bitnetCpp {
		if err := writeBitNetCpp(*out, w, tok, stdout); err != nil {
			return fmt.Errorf("models: %w", err)
		}
		return nil
	}
	for _, v := range variants() {
		wv := w
		if v.zeroFF {
			if wv, err = zeroFFN(w); err != nil {
				return fmt.Errorf("models: %s: %w", v.name, err)
			}
		}
		path := filepath.Join(*out, v.name+".gguf")
		opts := append([]model.GGUFOption{model.WithModelName("llamacpp-check " + v.name)}, v.opts...)
		if err := model.WriteGGUF(path, wv, tok, opts...); err != nil {
			return fmt.Errorf("models: %w", err)
		}
		fmt.Fprintln(stdout, path)
	}
	return nil
}

// sourceWeights loads hf, or makes random weights of smallConfig.
func sourceWeights(hf, tokPath string, seed uint64, family string) (*model.Weights, *tokenizer.Tokenizer, error) {
	if hf != "" {
		w, tok, err := model.LoadWeights(hf)
		if err != nil {
			return nil, nil, err
		}
		if tok == nil {
			return nil, nil, fmt.Errorf("%s: no tokenizer.json", hf)
		}
		return w, tok, nil
	}
	tok, err := tokenizer.Load(tokPath)
	if err != nil {
		return nil, nil, err
	}
	c := smallConfig(tok.VocabSize())
	switch family {
	case "bitnet":
	case "bitnet-b1.58":
		c.Architecture, c.HiddenAct = model.ArchBitNetB158, model.ActSiLU
	case "llama":
		c.Architecture, c.HiddenAct = model.ArchLlama, model.ActSiLU
	default:
		return nil, nil, fmt.Errorf("-family %q: want bitnet, bitnet-b1.58 or llama", family)
	}
	if id, ok := tok.BOS(); ok {
		c.BOSTokenID = id
	}
	// Without an EOS id llama.cpp's gpt2 vocabulary defaults to token 11.
	if id, ok := tok.TokenID("<|end_of_text|>"); ok {
		c.EOSTokenIDs = []int{id}
	}
	w, err := randomWeights(c, seed)
	return w, tok, err
}

// smallConfig is the default shape: every linear's input width a multiple of
// 256 (one TQ block) and QDim = hidden, as llama.cpp's bitnet loader wants.
func smallConfig(vocab int) model.Config {
	return model.Config{
		Architecture:      model.ArchBitNet,
		VocabSize:         vocab,
		HiddenSize:        256,
		IntermediateSize:  512,
		NumLayers:         2,
		NumHeads:          4,
		NumKVHeads:        2,
		HeadDim:           64,
		MaxPositions:      512,
		RopeTheta:         500000,
		RMSNormEps:        1e-5,
		HiddenAct:         "relu2",
		TieWordEmbeddings: true,
		BOSTokenID:        -1,
	}
}

// randomWeights draws uniform ternary codes (scale 1/sqrt(2/3*in) keeps the
// activations' size), embeddings in [-0.1, 0.1) and norms near 1, so that
// the logits are far from uniform and a mapping error shows.
func randomWeights(c model.Config, seed uint64) (*model.Weights, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(seed, 22))
	uniform := func(n int, lo, hi float32) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = lo + (hi-lo)*r.Float32()
		}
		return x
	}
	w := &model.Weights{Config: c, Layers: make([]model.Layer, c.NumLayers)}
	w.Embed = uniform(c.VocabSize*c.HiddenSize, -0.1, 0.1)
	w.Norm = uniform(c.HiddenSize, 0.5, 1.5)
	h, q, kv, ff := c.HiddenSize, c.QDim(), c.KVDim(), c.IntermediateSize
	for i := range w.Layers {
		l := &w.Layers[i]
		l.AttnNorm, l.FFNNorm = uniform(h, 0.5, 1.5), uniform(h, 0.5, 1.5)
		if c.SubNorms() {
			l.AttnSubNorm, l.FFNSubNorm = uniform(q, 0.5, 1.5), uniform(ff, 0.5, 1.5)
		}
		for _, lin := range []struct {
			m       **ternary.Matrix
			out, in int
		}{
			{&l.Q, q, h}, {&l.K, kv, h}, {&l.V, kv, h}, {&l.O, h, q},
			{&l.Gate, ff, h}, {&l.Up, ff, h}, {&l.Down, h, ff},
		} {
			t := make([]int8, lin.out*lin.in)
			for j := range t {
				t[j] = int8(r.IntN(3)) - 1
			}
			m, err := ternary.Pack(lin.out, lin.in, t, float32(1/math.Sqrt(2.0/3*float64(lin.in))))
			if err != nil {
				return nil, fmt.Errorf("layer %d: %w", i, err)
			}
			*lin.m = m
		}
	}
	return w, w.Validate()
}

// zeroFFN returns a shallow copy of w whose ffn_down matrices are all zero.
func zeroFFN(w *model.Weights) (*model.Weights, error) {
	c := *w
	c.Layers = append([]model.Layer(nil), w.Layers...)
	for i := range c.Layers {
		d := c.Layers[i].Down
		z, err := ternary.New(d.Rows, d.Cols, d.Scale)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		c.Layers[i].Down = z
	}
	return &c, nil
}
