package model

import (
	"math/rand/v2"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// tinyConfig is a small GQA configuration for tests with random weights.
func tinyConfig() Config {
	return Config{
		Architecture: ArchBitNet, VocabSize: 97, HiddenSize: 64, IntermediateSize: 96,
		NumLayers: 2, NumHeads: 4, NumKVHeads: 2, HeadDim: 16, MaxPositions: 40,
		RopeTheta: 10000, RMSNormEps: 1e-5, HiddenAct: "relu2", TieWordEmbeddings: true,
		BOSTokenID: 0, EOSTokenIDs: []int{1},
	}
}

// randomWeights builds a model with random ternary linears and float tensors.
func randomWeights(t testing.TB, c Config, seed uint64) *Weights {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	floats := func(n int, base, spread float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = base + spread*float32(r.NormFloat64())
		}
		return v
	}
	tern := func(rows, cols int) *ternary.Matrix {
		v := make([]int8, rows*cols)
		for i := range v {
			v[i] = int8(r.IntN(3)) - 1
		}
		m, err := ternary.Pack(rows, cols, v, 0.02+0.05*r.Float32())
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	h := c.HiddenSize
	w := &Weights{Config: c, Embed: floats(c.VocabSize*h, 0, 1), Norm: floats(h, 1, 0.1)}
	if !c.TieWordEmbeddings {
		w.Head = floats(c.VocabSize*h, 0, 0.5)
	}
	for i := 0; i < c.NumLayers; i++ {
		var l Layer
		for _, n := range l.NormSpecs(c) {
			if n.Want {
				*n.V = floats(n.N, 1, 0.1)
			}
		}
		for j, p := range l.Linears() {
			*p = tern(LinearShape(c, j))
		}
		w.Layers = append(w.Layers, l)
	}
	if err := w.Validate(); err != nil {
		t.Fatal(err)
	}
	return w
}

func randomTokens(r *rand.Rand, n, vocab int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = r.IntN(vocab)
	}
	return ids
}

func maxAbsDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		if d < 0 {
			d = -d
		}
		if d > m {
			m = d
		}
	}
	return m
}
