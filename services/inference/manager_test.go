package inference

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

func newTestManager(t *testing.T, opts ...ManagerOption) *Manager {
	t.Helper()
	m, err := NewManager(DirFetcher{Root: modelsDir}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func loadedRefs(m *Manager) []string {
	var out []string
	for _, li := range m.Loaded() {
		out = append(out, li.Ref.Text())
	}
	return out
}

func TestDirFetcher(t *testing.T) {
	f := DirFetcher{Root: modelsDir}
	tests := []struct {
		ref     string
		want    string
		wantErr error
	}{
		{tinyName, tinyName + "@1", nil},
		{tinyName + "@1", tinyName + "@1", nil},
		{tinyName + "@2", "", ErrNotFound},
		{tinyName + ":prod", "", ErrNotFound},
		{"nope", "", ErrNotFound},
	}
	for _, tc := range tests {
		r, err := modelv1.ParseRef(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		loc, err := f.Fetch(context.Background(), r)
		if !errors.Is(err, tc.wantErr) || (err == nil && loc.Ref.Text() != tc.want) {
			t.Errorf("%s: got %v, %v; want %s, %v", tc.ref, loc.Ref.Text(), err, tc.want, tc.wantErr)
		}
		if err == nil && (loc.Size <= 0 || loc.Format != modelv1.ModelFormat_MODEL_FORMAT_HF_SAFETENSORS) {
			t.Errorf("%s: got size %d, format %v", tc.ref, loc.Size, loc.Format)
		}
	}
	list, err := f.List(context.Background())
	if err != nil || len(list) < 2 {
		t.Fatalf("list: got %d models, %v; want the golden models", len(list), err)
	}
	for i := 1; i < len(list); i++ {
		if list[i-1].Ref.Name >= list[i].Ref.Name {
			t.Errorf("list not in name order: %s before %s", list[i-1].Ref.Name, list[i].Ref.Name)
		}
	}
}

func TestDirFetcherGGUF(t *testing.T) {
	dir := t.TempDir()
	tok := opticksTokenizer(t)
	w := randomWeights(t, tok, 256, 256, 1, 4) // TQ2_0 rows are 256 wide
	if err := model.WriteGGUF(filepath.Join(dir, "tiny.gguf"), w, tok); err != nil {
		t.Fatal(err)
	}
	m := newTestManager(t, WithIdleTTL(0))
	m.f = DirFetcher{Root: dir}
	h, err := m.Acquire(context.Background(), "tiny")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	if h.Ref.Text() != "tiny@1" || h.Model.Config().VocabSize != w.Config.VocabSize {
		t.Errorf("got %s with vocab %d", h.Ref.Text(), h.Model.Config().VocabSize)
	}
}

func TestVerifySHA256(t *testing.T) {
	p := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(p, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if err := VerifySHA256(p, abc); err != nil {
		t.Errorf("right digest: got %v", err)
	}
	if err := VerifySHA256(p, "00"+abc[2:]); err == nil {
		t.Error("wrong digest: got nil error")
	}
}

func TestManagerAcquire(t *testing.T) {
	m := newTestManager(t)
	ctx := context.Background()
	h1, err := m.Acquire(ctx, tinyName)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := m.Acquire(ctx, tinyName+"@1")
	if err != nil {
		t.Fatal(err)
	}
	if h1.Model != h2.Model || h1.Scheduler != h2.Scheduler {
		t.Error("two acquires of one version loaded it twice")
	}
	h1.Release()
	h1.Release() // idempotent
	h2.Release()
	for _, tc := range []struct {
		ref  string
		want error
	}{{"missing", ErrNotFound}, {"Bad Name", modelv1.ErrInvalidRef}, {"x@0", modelv1.ErrInvalidRef}} {
		if _, err := m.Acquire(ctx, tc.ref); !errors.Is(err, tc.want) {
			t.Errorf("%q: got %v, want %v", tc.ref, err, tc.want)
		}
	}
	if got := loadedRefs(m); len(got) != 1 || got[0] != tinyName+"@1" {
		t.Errorf("loaded: got %v, want [%s@1]", got, tinyName)
	}
}

func TestManagerConcurrentLoadOnce(t *testing.T) {
	loads := 0
	m := newTestManager(t)
	m.cfg.loadModel = func(ctx context.Context, path string, opts ...model.Option) (*model.Model, error) {
		loads++ // serialised: only one load of a key runs
		time.Sleep(20 * time.Millisecond)
		return model.Load(path, opts...)
	}
	done := make(chan *Handle, 4)
	for i := 0; i < 4; i++ {
		go func() {
			h, err := m.Acquire(context.Background(), tinyName)
			if err != nil {
				t.Error(err)
			}
			done <- h
		}()
	}
	for i := 0; i < 4; i++ {
		if h := <-done; h != nil {
			h.Release()
		}
	}
	if loads != 1 {
		t.Errorf("got %d loads, want 1", loads)
	}
}

func TestManagerBudgetLRU(t *testing.T) {
	names := []string{"tiny-gqa-tied-f32", "tiny-gqa-packed", "tiny-mha-untied-bf16"}
	// Room for the largest model, not for two.
	var biggest int64
	for _, n := range names {
		c, err := model.LoadConfigHF(filepath.Join(modelsDir, n))
		if err != nil {
			t.Fatal(err)
		}
		biggest = max(biggest, managerConfig{}.footprint(c).total())
	}
	m := newTestManager(t, WithMemoryBudget(biggest+biggest/2))
	ctx := context.Background()
	for _, n := range names {
		h, err := m.Acquire(ctx, n)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		h.Release()
		time.Sleep(time.Millisecond) // distinct last-used times
	}
	got := loadedRefs(m)
	if len(got) == 0 || len(got) == len(names) {
		t.Fatalf("loaded %v: want some evicted under a budget of %d", got, biggest+biggest/2)
	}
	if _, used := m.Budget(); used > biggest+biggest/2 {
		t.Errorf("used %d bytes, budget %d", used, biggest+biggest/2)
	}
	last := names[len(names)-1] + "@1"
	if got[len(got)-1] != last && got[0] != last {
		t.Errorf("loaded %v: want the most recent %s kept", got, last)
	}
	// A model in use is never evicted; when nothing else frees room, the
	// load fails with ErrOverBudget.
	small := newTestManager(t, WithMemoryBudget(biggest))
	h, err := small.Acquire(ctx, names[2])
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	if _, err := small.Acquire(ctx, names[0]); !errors.Is(err, ErrOverBudget) {
		t.Errorf("got %v, want ErrOverBudget while the other model is in use", err)
	}
	if _, err := newTestManager(t, WithMemoryBudget(10)).Acquire(ctx, names[0]); !errors.Is(err, ErrOverBudget) {
		t.Errorf("tiny budget: got %v, want ErrOverBudget", err)
	}
}

func TestManagerIdleUnload(t *testing.T) {
	m := newTestManager(t, WithIdleTTL(30*time.Millisecond), WithJanitorInterval(5*time.Millisecond))
	h, err := m.Acquire(context.Background(), tinyName)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	if len(m.Loaded()) != 1 {
		t.Fatal("a model in use was unloaded")
	}
	h.Release()
	waitFor(t, "the idle model to unload", func() bool { return len(m.Loaded()) == 0 })
}

func TestManagerUnload(t *testing.T) {
	m := newTestManager(t)
	ctx := context.Background()
	h, err := m.Acquire(ctx, tinyName)
	if err != nil {
		t.Fatal(err)
	}
	st, err := h.Scheduler.Submit(ctx, Request{Prompt: []int{1, 2}, MaxTokens: 5, EndTokens: []int{-1}})
	if err != nil {
		t.Fatal(err)
	}
	h.Release()
	infos, err := m.Unload(ctx, tinyName)
	if err != nil || len(infos) != 1 {
		t.Fatalf("got %v, %v; want one unloaded", infos, err)
	}
	if ids, _, final := collect(t, st); final.Err != nil || len(ids) != 5 {
		t.Errorf("in-flight request: got %d tokens, %v; want it finished", len(ids), final.Err)
	}
	if len(m.Loaded()) != 0 {
		t.Errorf("loaded after unload: %v", loadedRefs(m))
	}
	if infos, err := m.Unload(ctx, tinyName); err != nil || len(infos) != 0 {
		t.Errorf("second unload: got %v, %v; want nothing", infos, err)
	}
	m.Close()
	if _, err := m.Acquire(ctx, tinyName); !errors.Is(err, ErrClosed) {
		t.Errorf("after close: got %v, want ErrClosed", err)
	}
}

// TestManagerBudgetCountsKV: a model loads only when its weights and the
// KV caches of a full batch at its whole context fit the budget, and the
// refusal gives the numbers (RESOURCE_EXHAUSTED for clients).
func TestManagerBudgetCountsKV(t *testing.T) {
	c, err := model.LoadConfigHF(filepath.Join(modelsDir, tinyName))
	if err != nil {
		t.Fatal(err)
	}
	one := managerConfig{schedOpts: []SchedulerOption{WithMaxBatch(1)}}.footprint(c)
	full := managerConfig{}.footprint(c)
	if full.seqs != DefaultMaxBatch || full.kv != c.KVBytes(model.KVFloat32, DefaultMaxBatch, c.MaxPositions) || full.weights != c.ServeBytes() {
		t.Fatalf("got footprint %+v, want weights %d + KV of %d sequences x %d", full, c.ServeBytes(), DefaultMaxBatch, c.MaxPositions)
	}
	budget := (one.total() + full.total()) / 2
	tests := []struct {
		maxBatch int
		ok       bool
	}{{1, true}, {DefaultMaxBatch, false}}
	for _, tt := range tests {
		m := newTestManager(t, WithMemoryBudget(budget), WithSchedulerOptions(WithMaxBatch(tt.maxBatch)))
		h, err := m.Acquire(context.Background(), tinyName)
		if tt.ok {
			if err != nil {
				t.Errorf("max batch %d: got %v, want the model loaded in a budget of %d", tt.maxBatch, err, budget)
				continue
			}
			h.Release()
			continue
		}
		if !errors.Is(err, ErrOverBudget) {
			t.Fatalf("max batch %d: got %v, want ErrOverBudget", tt.maxBatch, err)
		}
		for _, want := range []string{model.FormatBytes(full.total()), model.FormatBytes(full.weights), model.FormatBytes(full.kv),
			fmt.Sprintf("--max-batch %d x %d-token context", DefaultMaxBatch, c.MaxPositions), fmt.Sprintf("(%d bytes)", budget)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("got message %q, want it to contain %q", err, want)
			}
		}
		if got := status.Code(toStatus(err)); got != codes.ResourceExhausted {
			t.Errorf("got code %v, want ResourceExhausted", got)
		}
	}
}

// TestManagerModelPlanner: the planner sees the model's configuration
// before the model loads, and what it adopts decides the model's shapes
// (shared/model's TestTritsPlan checks what a load packs for them); a
// planner that fails leaves the load to the node's plan.
func TestManagerModelPlanner(t *testing.T) {
	tq1 := kernels.Variant(kernels.Best()) + "-tq1"
	if !slices.Contains(kernels.Variants(), tq1) {
		tq1 = "generic-tq1"
	}
	for _, fail := range []bool{false, true} {
		eng, err := kernels.New(kernels.WithPlan(kernels.StaticPlan()), kernels.WithThreads(1))
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		loads := 0
		countLoads := func(c *managerConfig) {
			load := c.loadModel
			c.loadModel = func(ctx context.Context, path string, opts ...model.Option) (*model.Model, error) {
				loads++
				return load(ctx, path, opts...)
			}
		}
		var got []model.Config
		planner := func(ctx context.Context, c model.Config) error {
			got = append(got, c)
			if loads != 0 {
				t.Errorf("fail=%t: planner ran after the model loaded, want before", fail)
			}
			if fail {
				return errors.New("no time to measure")
			}
			p := kernels.StaticPlan()
			p.Choice = maps.Clone(p.Choice)
			p.Choice[kernels.GEMVMemory], p.Choice[kernels.GEMVCache] = tq1, tq1
			return eng.AdoptShapes(p, c.LinearShapes())
		}
		reads := func(rows, cols int) bool { return eng.ReadsTritsFor(false, rows, cols) }
		m := newTestManager(t, countLoads, WithModelPlanner(planner), WithModelOptions(model.WithEngine(eng)), withTritReads(reads))
		h, err := m.Acquire(context.Background(), tinyName)
		if err != nil {
			t.Fatalf("fail=%t: %v", fail, err)
		}
		c := h.Model.Config()
		if len(got) != 1 || got[0].HiddenSize != c.HiddenSize || got[0].NumLayers != c.NumLayers || got[0].IntermediateSize != c.IntermediateSize {
			t.Errorf("fail=%t: planner saw %d configurations (%+v), want the model's once", fail, len(got), got)
		}
		for _, sh := range c.LinearShapes() {
			for _, resident := range []bool{false, true} {
				if r := eng.ReadsTritsFor(resident, sh[0], sh[1]); r == fail {
					t.Errorf("fail=%t: shape %v (resident %t) reads trits %t", fail, sh, resident, r)
				}
			}
		}
		if got, want := m.cfg.footprint(c).trits, c.TritsBytes(reads); got != want || (got > 0) == fail {
			t.Errorf("fail=%t: footprint counts %d bytes of 1.6-bit copies, want %d", fail, got, want)
		}
		h.Release()
	}
}

// TestManagerPlannerAfterBudget: a model over the memory budget is refused
// before its shapes are measured.
func TestManagerPlannerAfterBudget(t *testing.T) {
	called := false
	planner := func(context.Context, model.Config) error { called = true; return nil }
	m := newTestManager(t, WithModelPlanner(planner), WithMemoryBudget(1024))
	if _, err := m.Acquire(context.Background(), tinyName); !errors.Is(err, ErrOverBudget) {
		t.Fatalf("got %v, want ErrOverBudget", err)
	}
	if called {
		t.Error("the planner ran for a model over the budget")
	}
}
