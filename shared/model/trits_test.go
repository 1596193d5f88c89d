package model

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

// TestTritsPlan decodes with a plan whose GEMV classes read the 1.6-bit
// layout: the model packs it at load and the logits keep their bits.
func TestTritsPlan(t *testing.T) {
	best := kernels.Variant(kernels.Best())
	tq1 := best + "-tq1"
	if !slices.Contains(kernels.Variants(), tq1) {
		tq1 = "generic-tq1"
	}
	plan := func(gemv kernels.Variant) kernels.Plan {
		p := kernels.Plan{Choice: map[kernels.Class]kernels.Variant{}, Source: "test"}
		for _, c := range kernels.Classes() {
			p.Choice[c] = best
		}
		p.Choice[kernels.GEMVMemory], p.Choice[kernels.GEMVCache] = gemv, gemv
		return p
	}
	for _, dir := range goldenModels(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			var logits [2][]float32
			for i, v := range []kernels.Variant{best, tq1} {
				e, err := kernels.New(kernels.WithPlan(plan(v)), kernels.WithThreads(2))
				if err != nil {
					t.Fatal(err)
				}
				defer e.Close()
				m, err := Load(dir, WithEngine(e))
				if err != nil {
					t.Fatal(err)
				}
				if got := m.layers[0].Q.Trits != nil; got != (i == 1) {
					t.Fatalf("plan %s: trits packed %t, want %t", v, got, i == 1)
				}
				seq := m.NewSequence()
				steps := []Step{{Seq: seq, Tokens: []int{1, 2, 3, 4, 5}}}
				if err := m.Forward(context.Background(), steps); err != nil {
					t.Fatal(err)
				}
				for _, id := range []int{7, 8, 9} { // decode: one token per step
					steps = []Step{{Seq: seq, Tokens: []int{id}}}
					if err := m.Forward(context.Background(), steps); err != nil {
						t.Fatal(err)
					}
					logits[i] = append(logits[i], steps[0].Logits...)
				}
			}
			if !slices.Equal(logits[0], logits[1]) {
				t.Error("decode logits differ between the 2-bit and the 1.6-bit layout")
			}
		})
	}
}
