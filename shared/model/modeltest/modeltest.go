// Package modeltest writes small model files for the tests of the packages
// that load them (the CLI, the mesh, the quantizer): one random two-layer
// BitNet GGUF with the repository's Opticks tokenizer, and the rewrite of
// an I2_S file into the 64-weight blocks of ARM builds of bitnet.cpp.
// Real files in t.TempDir(), written by the project's own GGUF writer.
package modeltest

import (
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// TinyGGUF writes a random two-layer BitNet model (hidden size 256, the
// 600-token Opticks BPE tokenizer, BOS 598, EOS 599) of maxPositions
// positions into a temporary file and returns its path. The weights depend
// on seed only, so tests may compare generated text across runs.
func TinyGGUF(t testing.TB, seed uint64, maxPositions int, opts ...model.GGUFOption) string {
	t.Helper()
	c := model.Config{
		Architecture: model.ArchBitNet, VocabSize: 600, HiddenSize: 256, IntermediateSize: 256,
		NumLayers: 2, NumHeads: 4, NumKVHeads: 2, HeadDim: 64, MaxPositions: maxPositions,
		RopeTheta: 500000, RMSNormEps: 1e-5, HiddenAct: "relu2", TieWordEmbeddings: true,
		BOSTokenID: 598, EOSTokenIDs: []int{599},
	}
	r := rand.New(rand.NewPCG(seed, seed))
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
		m, err := ternary.Pack(rows, cols, v, 0.05)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	h, kv, ff := c.HiddenSize, c.KVDim(), c.IntermediateSize
	w := &model.Weights{Config: c, Embed: floats(c.VocabSize*h, 0, 0.3), Norm: floats(h, 1, 0.1)}
	for range c.NumLayers {
		w.Layers = append(w.Layers, model.Layer{
			AttnNorm: floats(h, 1, 0.1), AttnSubNorm: floats(h, 1, 0.1),
			FFNNorm: floats(h, 1, 0.1), FFNSubNorm: floats(ff, 1, 0.1),
			Q: tern(h, h), K: tern(kv, h), V: tern(kv, h), O: tern(h, h),
			Gate: tern(ff, h), Up: tern(ff, h), Down: tern(h, ff),
		})
	}
	tok, err := tokenizer.Load(filepath.Join(repoRoot(t), "testdata", "tokenizer", "opticks-bpe600.json"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := model.WriteGGUF(path, w, tok, opts...); err != nil {
		t.Fatal(err)
	}
	return path
}

// ARMI2S rewrites the I2_S GGUF src into dst with the 64-weight blocks that
// llama-quantize of an ARM build of bitnet.cpp writes (the file does not
// record the block size: the same weights, other bytes). A file without an
// I2_S tensor fails the test.
func ARMI2S(t testing.TB, src, dst string) {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	wr, err := gguf.Rewrite(f, nil, func(ti *gguf.TensorInfo, d []byte) ([]byte, bool) {
		if ti.Type != gguf.I2_S {
			return d, true
		}
		n++
		m, err := ternary.DecodeI2S(d, int(ti.Dims[1]), int(ti.Dims[0]), ternary.I2SBlock128)
		if err != nil {
			t.Fatal(err)
		}
		out, err := m.EncodeI2SBlock(ternary.I2SBlock64)
		if err != nil {
			t.Fatal(err)
		}
		return out, true
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("%s: no I2_S tensor to rewrite", filepath.Base(src))
	}
	if err := wr.WriteFile(dst); err != nil {
		t.Fatal(err)
	}
}

// repoRoot returns the repository's root directory (this file is
// shared/model/modeltest/modeltest.go in it).
func repoRoot(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("modeltest: no source path for the repository's testdata")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}
