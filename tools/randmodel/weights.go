package main

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// config2B4T returns the configuration of microsoft/bitnet-b1.58-2B-4T with
// the given number of layers.
func config2B4T(layers int) model.Config {
	return model.Config{
		Architecture:      model.ArchBitNet,
		VocabSize:         128256,
		HiddenSize:        2560,
		IntermediateSize:  6912,
		NumLayers:         layers,
		NumHeads:          20,
		NumKVHeads:        5,
		HeadDim:           128,
		MaxPositions:      4096,
		RopeTheta:         500000,
		RMSNormEps:        1e-5,
		HiddenAct:         "relu2",
		TieWordEmbeddings: true,
		BOSTokenID:        128000,
		EOSTokenIDs:       []int{128001, 128009},
	}
}

// config3B is 1bitLLM bitnet_b1_58-3B's shape (BitnetForCausalLM, SiLU,
// widths 3200/8640 that no TQ block divides, LLaMA 2 vocabulary of 32002),
// with a tied head as bitnet.cpp's "bitnet" graph computes it (it has no
// output tensor).
func config3B(layers int) model.Config {
	return model.Config{
		Architecture: model.ArchBitNetB158, VocabSize: 32002, HiddenSize: 3200, IntermediateSize: 8640,
		NumLayers: layers, NumHeads: 32, NumKVHeads: 32, HeadDim: 100, MaxPositions: 2048,
		RopeTheta: 10000, RMSNormEps: 1e-5, HiddenAct: model.ActSiLU, TieWordEmbeddings: true, BOSTokenID: 1, EOSTokenIDs: []int{2},
	}
}

// config8B is HF1BitLLM Llama3-8B-1.58-100B-tokens' shape (LlamaForCausalLM
// with BitLinear, LLaMA 3 vocabulary, untied head).
func config8B(layers int) model.Config {
	return model.Config{
		Architecture: model.ArchLlama, VocabSize: 128256, HiddenSize: 4096, IntermediateSize: 14336,
		NumLayers: layers, NumHeads: 32, NumKVHeads: 8, HeadDim: 128, MaxPositions: 8192,
		RopeTheta: 500000, RMSNormEps: 1e-5, HiddenAct: model.ActSiLU, BOSTokenID: 128000, EOSTokenIDs: []int{128001, 128009},
	}
}

// randomWeights fills a model of shape c with uniformly random ternary
// weights (scale 1/sqrt(2/3*in), so activations keep their size), random
// embeddings in [-0.05, 0.05) and unit norms. Same seed, same weights.
func randomWeights(c model.Config, seed uint64) (*model.Weights, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(seed, 0x62697473))
	w := &model.Weights{Config: c, Layers: make([]model.Layer, c.NumLayers)}
	w.Embed = randomFloats(r, c.VocabSize*c.HiddenSize, 0.05)
	if !c.TieWordEmbeddings {
		w.Head = randomFloats(r, c.VocabSize*c.HiddenSize, 0.05)
	}
	w.Norm = ones(c.HiddenSize)
	h, q, kv, ff := c.HiddenSize, c.QDim(), c.KVDim(), c.IntermediateSize
	for i := range w.Layers {
		l := &w.Layers[i]
		l.AttnNorm, l.FFNNorm = ones(h), ones(h)
		if c.SubNorms() {
			l.AttnSubNorm, l.FFNSubNorm = ones(q), ones(ff)
		}
		for _, lin := range []struct {
			m          **ternary.Matrix
			rows, cols int
		}{
			{&l.Q, q, h}, {&l.K, kv, h}, {&l.V, kv, h}, {&l.O, h, q},
			{&l.Gate, ff, h}, {&l.Up, ff, h}, {&l.Down, h, ff},
		} {
			m, err := randomTernary(r, lin.rows, lin.cols)
			if err != nil {
				return nil, fmt.Errorf("layer %d: %w", i, err)
			}
			*lin.m = m
		}
	}
	return w, w.Validate()
}

// validBytes lists the 81 bytes whose four 2-bit codes are all in {0,1,2}.
func validBytes() [81]byte {
	var t [81]byte
	for i := range t {
		v := i
		var b byte
		for n := 0; n < 4; n++ {
			b |= byte(v%3) << (2 * n)
			v /= 3
		}
		t[i] = b
	}
	return t
}

// randomTernary returns a rows x cols matrix of uniform random codes.
func randomTernary(r *rand.Rand, rows, cols int) (*ternary.Matrix, error) {
	m, err := ternary.New(rows, cols, float32(1/math.Sqrt(2.0/3*float64(cols))))
	if err != nil {
		return nil, err
	}
	table := validBytes()
	b := m.Codes
	for k := 0; k < len(b); k += 8 {
		x := r.Uint64()
		for j := k; j < min(k+8, len(b)); j++ {
			b[j] = table[(x&0xff)*81>>8]
			x >>= 8
		}
	}
	// Padding weights past cols must stay zero (code 1).
	for row := 0; row < rows; row++ {
		for c := cols; c < ternary.PaddedCols(cols); c++ {
			g, in := c/ternary.GroupSize, c%ternary.GroupSize
			n, k := in/ternary.GroupBytes, in%ternary.GroupBytes
			p := &b[row*m.Stride+g*ternary.GroupBytes+k]
			*p = *p&^(3<<(2*n)) | 1<<(2*n)
		}
	}
	return m, nil
}

// randomFloats returns n uniform floats in [-a, a).
func randomFloats(r *rand.Rand, n int, a float32) []float32 {
	x := make([]float32, n)
	for i := 0; i < n; i += 2 {
		u := r.Uint64()
		x[i] = (float32(uint32(u)>>8)/(1<<24)*2 - 1) * a
		if i+1 < n {
			x[i+1] = (float32(uint32(u>>32)>>8)/(1<<24)*2 - 1) * a
		}
	}
	return x
}

func ones(n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = 1
	}
	return x
}
