package mesh

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// writeI2SModels writes a random two-layer model whose linears are all
// bitnet.cpp I2_S, once with the x86 128-weight blocks and once with the
// 64-weight blocks of ARM builds' llama-quantize (same weights).
func writeI2SModels(t *testing.T) (x86, arm string) {
	t.Helper()
	c := model.Config{
		Architecture: model.ArchBitNet, VocabSize: 600, HiddenSize: 256, IntermediateSize: 256,
		NumLayers: 2, NumHeads: 4, NumKVHeads: 2, HeadDim: 64, MaxPositions: 64,
		RopeTheta: 500000, RMSNormEps: 1e-5, HiddenAct: "relu2", TieWordEmbeddings: true,
		BOSTokenID: 598, EOSTokenIDs: []int{599},
	}
	r := rand.New(rand.NewPCG(4, 4))
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
			AttnNorm: floats(h, 1, 0.1), AttnSubNorm: floats(h, 1, 0.1), FFNNorm: floats(h, 1, 0.1), FFNSubNorm: floats(ff, 1, 0.1),
			Q: tern(h, h), K: tern(kv, h), V: tern(kv, h), O: tern(h, h), Gate: tern(ff, h), Up: tern(ff, h), Down: tern(h, ff),
		})
	}
	tok, err := tokenizer.Load(filepath.Join("..", "..", "testdata", "tokenizer", "opticks-bpe600.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	x86, arm = filepath.Join(dir, "x86.gguf"), filepath.Join(dir, "arm.gguf")
	if err := model.WriteGGUF(x86, w, tok, model.WithTernaryType(gguf.I2_S)); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(x86)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	wr, err := gguf.Rewrite(f, nil, func(ti *gguf.TensorInfo, d []byte) ([]byte, bool) {
		if ti.Type != gguf.I2_S {
			return d, true
		}
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
	if err := wr.WriteFile(arm); err != nil {
		t.Fatal(err)
	}
	return x86, arm
}

// TestUpI2SBlock: Config.I2SBlock (up/serve --i2s-block) reaches the
// inference node's loader: an ARM-layout I2_S file served by a mesh with
// 64-weight blocks generates what the x86 file does on a default mesh, and
// something else on the default mesh.
func TestUpI2SBlock(t *testing.T) {
	x86, arm := writeI2SModels(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	greedy := func(block ternary.I2SBlock, path string) string {
		t.Helper()
		e := startUp(t, Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "-", DataDir: t.TempDir(), Threads: 1, I2SBlock: block})
		c, err := sdk.Dial(ctx, e.GRPC.String(), sdk.WithRetry(3, 50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Registry().Push(ctx, "m", path, nil); err != nil {
			t.Fatal(err)
		}
		var text strings.Builder
		temp := float32(0)
		if _, err := c.Inference().GenerateText(ctx, &inferencev1.GenerateRequest{Model: "m@1", Prompt: "Light is", MaxTokens: 12, Temperature: &temp},
			func(s string) error { text.WriteString(s); return nil }); err != nil {
			t.Fatal(err)
		}
		return text.String()
	}
	want := greedy(0, x86)
	if got := greedy(ternary.I2SBlock64, arm); got != want || want == "" {
		t.Errorf("ARM file on a mesh with I2SBlock 64: %q, want the x86 file's %q", got, want)
	}
	if got := greedy(0, arm); got == want {
		t.Errorf("ARM file on a default mesh: %q, the same as the x86 file's: the test does not tell the layouts apart", got)
	}
	if err := Up(ctx, Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "-", DataDir: t.TempDir(), I2SBlock: 32}, nil); err == nil || !strings.Contains(err.Error(), "128 or 64") {
		t.Errorf("I2SBlock 32: got %v, want an error naming 128 or 64", err)
	}
}
