package quantizer

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model/modeltest"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// TestI2SBlockSource: a GGUF source whose I2_S tensors have the 64-weight
// blocks of ARM builds of bitnet.cpp is read right with WithI2SBlock(64)
// (the result computes what quantizing the x86 file gives) and wrongly
// without it (the file does not record the block size).
func TestI2SBlockSource(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "ckpt")
	writeCheckpoint(t, dir, false, 1)
	j, err := e.q.Create(ctx, Request{Path: dir, Target: registry.QuantI2S, Output: Output{Name: "x86"}, Calibration: smallCalib()})
	if err != nil {
		t.Fatal(err)
	}
	if j = wait(t, e.q, j.ID); j.State != jobs.StateSucceeded {
		t.Fatalf("I2_S job: %v (%v)", j.State, j.Err)
	}
	v, err := e.store.Resolve(ctx, "x86@1")
	if err != nil {
		t.Fatal(err)
	}
	x86 := download(t, e.store, v)
	arm := filepath.Join(t.TempDir(), "arm.gguf")
	modeltest.ARMI2S(t, x86, arm)

	tokens := []int{598, 5, 77, 300, 12, 45, 599, 100, 3, 250}
	quantize := func(e *testEnv, src, name string) []float32 {
		t.Helper()
		j, err := e.q.Create(ctx, Request{Path: src, Output: Output{Name: name}, Calibration: smallCalib()})
		if err != nil {
			t.Fatal(err)
		}
		if j = wait(t, e.q, j.ID); j.State != jobs.StateSucceeded {
			t.Fatalf("%s: %v (%v)", name, j.State, j.Err)
		}
		v, err := e.store.Resolve(ctx, name+"@1")
		if err != nil {
			t.Fatal(err)
		}
		return logitsOf(t, download(t, e.store, v), tokens)
	}
	want := quantize(e, x86, "from-x86")
	if got := quantize(newEnv(t, WithI2SBlock(ternary.I2SBlock64)), arm, "from-arm"); !slices.Equal(got, want) {
		t.Error("ARM-layout source with WithI2SBlock(64): result differs from the x86 source's")
	}
	if got := quantize(e, arm, "from-arm-128"); slices.Equal(got, want) {
		t.Error("ARM-layout source read as 128-blocks gives the same result: the test does not tell the layouts apart")
	}
}
