package model

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
)

// TestGoldenFamiliesGGUF writes every golden model (each family's layout)
// as GGUF with exact float tensors and reads it back: the file computes
// what the Hugging Face checkpoint computes (logits of a golden window,
// or embeddings), whatever the linears' widths (I2_S/Q8_0 fallbacks).
func TestGoldenFamiliesGGUF(t *testing.T) {
	for _, dir := range goldenModels(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			g := loadGolden(t, dir)
			w, tok, err := LoadWeights(dir)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "m.gguf")
			err = WriteGGUF(path, w, tok, WithFloatType(gguf.F32), WithScaleTensors(true))
			if errors.Is(err, ErrGGUF) {
				t.Skip("no GGUF layout for this model here:", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			hf := newTestModel(t, w, WithHeadInt8(false))
			gm, err := Load(path, WithHeadInt8(false))
			if err != nil {
				t.Fatal(err)
			}
			defer gm.Close()
			if gc, hc := gm.Config(), hf.Config(); gc.Family() != hc.Family() || gc.IsEmbedding() != hc.IsEmbedding() {
				t.Errorf("GGUF config %v, HF %v: families or embedding differ", gc, hc)
			}
			// Linears in a Q8_0/F16 fallback carry their scale in fp16
			// block scales (about 1e-4 relative, even with scale tensors):
			// those files score alike; all-ternary-type files compute
			// the same.
			plan, err := PlanGGUF(w, WithFloatType(gguf.F32), WithScaleTensors(true))
			if err != nil {
				t.Fatal(err)
			}
			exact := true
			for _, pt := range plan.Tensors {
				exact = exact && (pt.Type == gguf.TQ2_0 || pt.Type == gguf.TQ1_0 || pt.Type == gguf.I2_S)
			}
			if len(g.Embeddings) > 0 {
				for i, e := range g.Embeddings {
					a, err := hf.Embed(context.Background(), e.Tokens)
					if err != nil {
						t.Fatal(err)
					}
					b, err := gm.Embed(context.Background(), e.Tokens)
					if err != nil {
						t.Fatal(err)
					}
					a64 := make([]float64, len(a))
					for k, v := range a {
						a64[k] = float64(v)
					}
					if d, c := maxAbsDiff(a, b), cosine(b, a64); (exact && d > 1e-5) || c < 0.9999 {
						t.Errorf("embedding %d: GGUF differs from HF by %g (cosine %.6f, exact types %v)", i, d, c, exact)
					}
				}
				return
			}
			if exact {
				a := modelLogits(t, hf, nil, g.Windows[0].Tokens)
				b := modelLogits(t, gm, nil, g.Windows[0].Tokens)
				if d := maxAbsDiff(a, b); d > 1e-4 {
					t.Errorf("GGUF logits differ from HF by %g", d)
				}
				return
			}
			pa, err := hf.Perplexity(context.Background(), g.Windows[0].Tokens, 0)
			if err != nil {
				t.Fatal(err)
			}
			pb, err := gm.Perplexity(context.Background(), g.Windows[0].Tokens, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s with Q8_0/F16 fallbacks: ppl %.6g (HF %.6g)", plan.Arch, pb.PPL, pa.PPL)
			if rel := pb.PPL/pa.PPL - 1; rel > 1e-2 || rel < -1e-2 {
				t.Errorf("GGUF perplexity %.6g, HF %.6g: relative difference %.2g > 1e-2", pb.PPL, pa.PPL, rel)
			}
		})
	}
}
