package model

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

// TestHeadFormats loads each golden model with every head format: the
// packed heads read fewer bytes and score perplexities close to int8's.
func TestHeadFormats(t *testing.T) {
	for _, dir := range goldenModels(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			g := loadGolden(t, dir)
			toks := g.Windows[0].Tokens
			var ppl8 float64
			var bytes8 int64
			for _, f := range []kernels.HeadFormat{kernels.HeadInt8, kernels.HeadInt6, kernels.HeadInt4} {
				m, err := Load(dir, WithHeadFormat(f))
				if err != nil {
					t.Fatal(err)
				}
				if m.HeadFormat() != f {
					t.Errorf("HeadFormat() = %q, want %q", m.HeadFormat(), f)
				}
				res, err := m.Perplexity(context.Background(), toks, len(toks))
				if err != nil {
					t.Fatal(err)
				}
				b := m.HeadBytes()
				m.Close()
				if f == kernels.HeadInt8 {
					ppl8, bytes8 = res.PPL, b
					continue
				}
				if want := bytes8 * int64(f.Bits()) / 8; b != want {
					t.Errorf("%s head: %d bytes, want %d", f, b, want)
				}
				// Untrained golden models: logits near uniform, so a coarse head moves perplexity little.
				if d := (res.PPL - ppl8) / ppl8; d > 0.05 || d < -0.05 {
					t.Errorf("%s head: ppl %.4f vs int8 %.4f (%.2f%%)", f, res.PPL, ppl8, 100*d)
				}
				t.Logf("%s head: ppl %.5f vs int8 %.5f (%+.3f%%), %d bytes vs %d", f, res.PPL, ppl8, 100*(res.PPL-ppl8)/ppl8, b, bytes8)
			}
		})
	}
	if _, err := New(&Weights{}, nil, WithHeadFormat("int5")); err == nil {
		t.Error("New with head format int5: got nil error")
	}
}
