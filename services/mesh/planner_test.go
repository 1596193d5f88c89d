package mesh

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"
	zapobs "go.uber.org/zap/zaptest/observer"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// TestModelPlanner measures the one-token classes on a model's shapes once
// (then reads the cached plan) and logs what each shape runs.
func TestModelPlanner(t *testing.T) {
	if testing.Short() {
		t.Skip("measures kernels")
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	eng, err := kernels.New(kernels.WithPlan(kernels.StaticPlan()), kernels.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	core, logs := zapobs.New(zap.InfoLevel)
	cfg := Config{KernelPlan: kernels.PlanAuto, Logger: zap.New(core)}
	c := model.Config{HiddenSize: 256, IntermediateSize: 640, NumHeads: 4, NumKVHeads: 2, NumLayers: 1}
	plan := modelPlanner(cfg, "inference-0", eng, 1)
	for i, want := range []string{"measured", "cache"} {
		if err := plan(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		entries := logs.FilterMessage("kernel plan on the model's shapes").All()
		if len(entries) != i+1 {
			t.Fatalf("call %d: %d log entries, want %d", i, len(entries), i+1)
		}
		f := entries[i].ContextMap()
		if f["source"] != want || f["gemv_dram"] == "" {
			t.Errorf("call %d: logged %v, want source %s and every shape's variant", i, f, want)
		}
	}
	plans, _ := filepath.Glob(filepath.Join(os.Getenv("XDG_CACHE_HOME"), "bitnet-mesh", "kernel-plans", "*.json"))
	if len(plans) != 1 {
		t.Errorf("cached plans: got %v, want one", plans)
	}
	if err := plan(canceled(), model.Config{HiddenSize: 512, IntermediateSize: 1024, NumHeads: 4, NumLayers: 1}); err == nil {
		t.Error("a cancelled measurement: got nil error")
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
