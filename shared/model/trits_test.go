package model

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// TestTritsPlan decodes with a plan whose GEMV classes read the 1.6-bit
// layout, and with one that reads it for the query projection's shape only:
// the model packs it at load for those matrices alone and the logits keep
// their bits.
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
			var logits [3][]float32
			var qr, qc int // the query projection's shape, from the first load
			for i, v := range []kernels.Variant{best, tq1, best} {
				p := plan(v)
				if i == 2 {
					for _, c := range []kernels.Class{kernels.GEMVMemory, kernels.GEMVCache} {
						p.PerShape = append(p.PerShape, kernels.ShapeChoice{Class: c, Rows: qr, Cols: qc, Variant: tq1})
					}
				}
				e, err := kernels.New(kernels.WithPlan(p), kernels.WithThreads(2))
				if err != nil {
					t.Fatal(err)
				}
				defer e.Close()
				m, err := Load(dir, WithEngine(e))
				if err != nil {
					t.Fatal(err)
				}
				if m.cfg.IsEmbedding() {
					m.Close()
					t.Skip("an embedding model has no logits to compare (its pooled states use the same products)")
				}
				l := &m.layers[0]
				qr, qc = l.Q.Rows, l.Q.Cols
				if got := l.Q.Trits != nil; got != (i > 0) {
					t.Fatalf("plan %d: query trits packed %t, want %t", i, got, i > 0)
				}
				var packed int64
				for li := range m.layers {
					l := &m.layers[li]
					for _, w := range []*ternary.Matrix{l.Q, l.K, l.V, l.O, l.Gate, l.Up, l.Down} {
						packed += int64(len(w.Trits))
					}
				}
				if want := m.cfg.TritsBytes(func(r, c int) bool { return e.ReadsTritsFor(m.resident, r, c) }); packed != want {
					t.Errorf("plan %d: %d bytes of trits packed, Config.TritsBytes says %d", i, packed, want)
				}
				if d := l.Down; d.Rows != qr || d.Cols != qc {
					if got := d.Trits != nil; got != (i == 1) {
						t.Fatalf("plan %d: down-projection trits packed %t, want %t", i, got, i == 1)
					}
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
			if !slices.Equal(logits[0], logits[2]) {
				t.Error("decode logits differ between the 2-bit layout and the 1.6-bit one for the query projection only")
			}
		})
	}
}
