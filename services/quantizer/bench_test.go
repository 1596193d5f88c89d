package quantizer

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// BenchmarkJob runs whole jobs (fetch, load, quantize, evaluate 48 tokens,
// upload) on the 256-wide two-layer master checkpoint.
func BenchmarkJob(b *testing.B) {
	e := newEnv(b)
	dir := filepath.Join(b.TempDir(), "ckpt")
	writeCheckpoint(b, dir, false, 1)
	e.push(b, "tiny", dir, registry.FormatHFSafetensors)
	ctx := context.Background()
	for b.Loop() {
		j, err := e.q.Create(ctx, Request{Model: "tiny", Output: Output{Name: "out"}, Calibration: smallCalib()})
		if err != nil {
			b.Fatal(err)
		}
		if j = wait(b, e.q, j.ID); j.State != jobs.StateSucceeded {
			b.Fatalf("state %v: %v", j.State, j.Err)
		}
	}
}

// BenchmarkReferenceVsEngine compares the float reference ("before") with
// the engine ("after") on 64 tokens of the same checkpoint.
func BenchmarkReferenceVsEngine(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "ckpt")
	writeCheckpoint(b, dir, true, 1)
	w, tok, err := model.LoadWeights(dir)
	if err != nil {
		b.Fatal(err)
	}
	tokens := make([]int, 64)
	for i := range tokens {
		tokens[i] = (i * 37) % 600
	}
	ctx := context.Background()
	b.Run("reference", func(b *testing.B) {
		layers := make([]refLayer, len(w.Layers))
		for i := range w.Layers {
			for _, lin := range linearsOf(&w.Layers[i]) {
				_, rows, _ := fullPrecision(nil, lin.hf, lin.m)
				layers[i].lin[lin.i] = rows
			}
			layers[i].norms = &w.Layers[i]
		}
		ref := newReference(w.Config, w.Embed, w.Norm, w.HeadWeights(), layers, 0)
		for b.Loop() {
			ref.reset()
			if _, err := ref.feed(ctx, tokens); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("engine", func(b *testing.B) {
		m, err := model.New(w, tok, model.WithHeadInt8(false))
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		s := &engineScorer{m: m, seq: m.NewSequence()}
		for b.Loop() {
			s.reset()
			if _, err := s.feed(ctx, tokens); err != nil {
				b.Fatal(err)
			}
		}
	})
}
