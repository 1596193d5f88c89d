package mesh

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/services/inference"
	"github.com/bitnet-mesh/bitnet-mesh/shared/memlimit"
)

// TestInferenceMemorySettings: without --memory-budget an inference node's
// budget is memlimit's share of the container's cgroup limit (read from
// real files under MemoryRoot), and --max-batch, --max-queue and
// --prefill-chunk reach its schedulers.
func TestInferenceMemorySettings(t *testing.T) {
	root := t.TempDir()
	const limit = 3 << 30
	for name, body := range map[string]string{
		"proc/self/cgroup":         "0::/\n",
		"sys/fs/cgroup/memory.max": "3221225472\n",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	disc := newMemDiscovery(t)
	base := Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "-", DataDir: t.TempDir(), Discovery: disc, Version: "mem"}
	reg := serve(t, Registry, base)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := dialSDK(t, reg.Addr().String()).Registry().Push(ctx, "tiny", "../../testdata/models/tiny-gqa-tied-f32", nil); err != nil {
		t.Fatal(err)
	}
	cfg := base
	cfg.MemoryRoot, cfg.MaxBatch, cfg.MaxQueue, cfg.PrefillChunk = root, 3, 5, 7
	cfg.RegistryAddr = reg.Addr().String()
	s, err := Build(Inference, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv := s.parts[Inference].extra.(*inference.Server)
	want := memlimit.Limit{Bytes: limit, Source: memlimit.CgroupV2}.Budget()
	if got, _ := srv.Manager().Budget(); got != want {
		t.Errorf("got budget %d, want %d (%.0f%% of the cgroup limit %d)", got, want, 100*memlimit.BudgetFractionCgroup, int64(limit))
	}
	h, err := srv.Manager().Acquire(ctx, "tiny")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	st := h.Scheduler.Stats()
	if st.MaxBatch != 3 || st.QueueCapacity != 5 {
		t.Errorf("got max batch %d, queue capacity %d, want 3 and 5", st.MaxBatch, st.QueueCapacity)
	}
	if got := h.Scheduler.PrefillChunk(); got != 7 {
		t.Errorf("got prefill chunk %d, want 7", got)
	}
}
