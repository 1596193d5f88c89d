package quantizer

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// golden is the part of a golden model's golden.json (written by the
// PyTorch reference in tools/) that this test reads.
type golden struct {
	Windows []struct {
		Tokens  []int   `json:"tokens"`
		NLLMean float64 `json:"nll_mean"`
	} `json:"windows"`
	Logits []struct {
		Tokens []int     `json:"tokens"`
		Last   []float32 `json:"last"`
	} `json:"logits"`
}

// dequantised builds the reference from the engine's weights with s*T
// linears: the model Hugging Face's BitNet computes.
func dequantised(t *testing.T, w *model.Weights) *reference {
	t.Helper()
	layers := make([]refLayer, len(w.Layers))
	for i := range w.Layers {
		l := &w.Layers[i]
		layers[i] = refLayer{norms: l}
		for _, lin := range linearsOf(l) {
			_, rows, err := fullPrecision(nil, lin.hf, lin.m)
			if err != nil {
				t.Fatal(err)
			}
			layers[i].lin[lin.i] = rows
		}
	}
	return newReference(w.Config, w.Embed, w.Norm, w.HeadWeights(), layers, 2)
}

// TestReferenceMatchesGolden checks the float reference forward pass against
// the PyTorch golden outputs of the engine's tiny models (GQA and MHA, tied
// and untied).
func TestReferenceMatchesGolden(t *testing.T) {
	// 2B4T (GQA and MHA, tied and untied) and every causal family's
	// synthetic checkpoint (tools/reference/make_families.py).
	names := []string{"tiny-gqa-tied-f32", "tiny-mha-untied-bf16", "tiny-bitnet-b158-fp16", "tiny-llama3-bitlinear",
		"tiny-falcon3-bitlinear", "tiny-llama-rmsnorm-autobitlinear"}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(goldenDir(name), "golden.json")); err != nil {
				t.Skip("no golden model:", err)
			}
			dir := goldenDir(name)
			w, err := model.LoadHF(dir)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(dir, "golden.json"))
			if err != nil {
				t.Fatal(err)
			}
			var g golden
			if err := json.Unmarshal(data, &g); err != nil {
				t.Fatal(err)
			}
			ref := dequantised(t, w)
			ctx := context.Background()
			V := w.Config.VocabSize
			for _, lg := range g.Logits {
				ref.reset()
				got, err := ref.feed(ctx, lg.Tokens)
				if err != nil {
					t.Fatal(err)
				}
				last := got[(len(lg.Tokens)-1)*V:]
				var maxDiff float64
				for i := range last {
					maxDiff = max(maxDiff, math.Abs(float64(last[i]-lg.Last[i])))
				}
				t.Logf("%d tokens: max |logit - golden| = %.2g", len(lg.Tokens), maxDiff)
				// Float products (s*T).(q/s_x) instead of the engine's and
				// PyTorch's integer sums can flip an int8 activation
				// rounding that sits on a tie: 2e-2 covers a couple of flips.
				if maxDiff > 2e-2 {
					t.Errorf("%d tokens: last logits differ by up to %g, want <= 2e-2", len(lg.Tokens), maxDiff)
				}
			}
			win := g.Windows[0]
			ref.reset()
			logits, err := ref.feed(ctx, win.Tokens[:len(win.Tokens)-1])
			if err != nil {
				t.Fatal(err)
			}
			lp := make([]float64, V)
			var nll float64
			for i := 0; i+1 < len(win.Tokens); i++ {
				logSoftmax(lp, logits[i*V:(i+1)*V])
				nll -= lp[win.Tokens[i+1]]
			}
			nll /= float64(len(win.Tokens) - 1)
			t.Logf("window NLL %.6f, golden %.6f", nll, win.NLLMean)
			if math.Abs(nll/win.NLLMean-1) > 1e-4 {
				t.Errorf("window NLL %g, want %g within 1e-4 relative", nll, win.NLLMean)
			}
		})
	}
}

func TestReferenceContextLimit(t *testing.T) {
	w, _, err := model.LoadWeights(goldenDir("tiny-gqa-tied-f32"))
	if err != nil {
		t.Fatal(err)
	}
	ref := dequantised(t, w)
	if _, err := ref.feed(context.Background(), make([]int, w.Config.MaxPositions+1)); err == nil {
		t.Error("feeding past max_position_embeddings: got nil error")
	}
	if _, err := ref.feed(context.Background(), []int{w.Config.VocabSize}); err == nil {
		t.Error("token id = vocab size: got nil error")
	}
}
