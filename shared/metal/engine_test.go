package metal_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metal"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// gpuEngine returns an engine whose plan runs every product on g.
func gpuEngine(t testing.TB, g kernels.Accelerator, opts ...kernels.Option) *kernels.Engine {
	t.Helper()
	e, err := kernels.New(append([]kernels.Option{kernels.WithAccelerator(g), kernels.WithPath(kernels.Metal), kernels.WithThreads(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// TestEngineOnGPU: a kernels.Engine on the metal path runs its products on
// the GPU (the GPU counts them) with the generic path's bits.
func TestEngineOnGPU(t *testing.T) {
	for _, d := range devices(t) {
		t.Run(d.name, func(t *testing.T) {
			g := d.gpu
			e := gpuEngine(t, g)
			if e.Path() != kernels.Metal || !e.Plan().UsesAccelerator() || !slices.Contains(e.Plan().Paths(), kernels.Metal) {
				t.Errorf("engine path %s, plan %s: want metal", e.Path(), e.Plan())
			}
			cpu := generic(t)
			rng := rand.New(rand.NewPCG(21, 22))
			rows, cols := 24, 520
			ws := []*ternary.Matrix{ternaryMatrix(t, rng, rows, cols), ternaryMatrix(t, rng, 8, cols)}
			wf := floatMatrix(rng, rows, cols)
			h8, _ := kernels.NewInt8Matrix(rows, cols, wf)
			h4, _ := kernels.NewPackedMatrix(rows, cols, 4, wf)
			for _, n := range []int{1, 3, 20} {
				a := activations(t, rng, n, cols)
				before := g.Stats().Products
				ys := [][]float32{make([]float32, n*rows), make([]float32, n*8)}
				if err := e.MatMuls(ys, ws, a, false); err != nil {
					t.Fatal(err)
				}
				for i, w := range ws {
					want := make([]float32, n*w.Rows)
					if err := cpu.MatMul(want, w, a); err != nil {
						t.Fatal(err)
					}
					sameBits(t, fmt.Sprintf("MatMuls[%d] n=%d", i, n), ys[i], want)
				}
				for _, c := range []struct {
					name     string
					cpu, gpu func([]float32) error
				}{
					{"MatMul", func(y []float32) error { return cpu.MatMul(y, ws[0], a) }, func(y []float32) error { return e.MatMul(y, ws[0], a) }},
					{"MatMulResident", func(y []float32) error { return cpu.MatMul(y, ws[0], a) }, func(y []float32) error { return e.MatMulResident(y, ws[0], a) }},
					{"MatMulInt8", func(y []float32) error { return cpu.MatMulInt8(y, h8, a) }, func(y []float32) error { return e.MatMulInt8(y, h8, a) }},
					{"MatMulPacked", func(y []float32) error { return cpu.MatMulPacked(y, h4, a) }, func(y []float32) error { return e.MatMulPacked(y, h4, a) }},
				} {
					check(t, fmt.Sprintf("%s n=%d", c.name, n), n*rows, c.cpu, c.gpu)
				}
				if ran := g.Stats().Products - before; ran != 6 {
					t.Errorf("n=%d: the GPU ran %d products, want 6", n, ran)
				}
			}
		})
	}
}

// TestPlanPerClass: a plan that puts only prefill on the GPU runs decode on
// the CPU.
func TestPlanPerClass(t *testing.T) {
	g, _ := emulated(t)
	p := kernels.StaticPlan()
	p.Choice[kernels.GEMMLarge] = kernels.Variant(kernels.Metal)
	e, err := kernels.New(kernels.WithAccelerator(g), kernels.WithPlan(p), kernels.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rng := rand.New(rand.NewPCG(23, 24))
	w := ternaryMatrix(t, rng, 16, 256)
	for _, tc := range []struct{ n, gpu int }{{1, 0}, {16, 0}, {17, 1}, {64, 1}} {
		a := activations(t, rng, tc.n, 256)
		before := g.Stats().Products
		if err := e.MatMul(make([]float32, tc.n*16), w, a); err != nil {
			t.Fatal(err)
		}
		if ran := g.Stats().Products - before; ran != int64(tc.gpu) {
			t.Errorf("n=%d: the GPU ran %d products, want %d", tc.n, ran, tc.gpu)
		}
	}
}

func TestMetalNeedsAGPU(t *testing.T) {
	if _, err := kernels.New(kernels.WithPath(kernels.Metal)); !errors.Is(err, kernels.ErrUnsupported) {
		t.Errorf("forced metal without a GPU: got %v, want ErrUnsupported", err)
	}
	p := kernels.StaticPlan()
	p.Choice[kernels.Head] = kernels.Variant(kernels.Metal)
	if _, err := kernels.New(kernels.WithPlan(p)); !errors.Is(err, kernels.ErrUnsupported) {
		t.Errorf("a plan with metal, no GPU: got %v, want ErrUnsupported", err)
	}
	g, _ := emulated(t)
	p.Choice[kernels.Quantize] = kernels.Variant(kernels.Metal)
	if _, err := kernels.New(kernels.WithPlan(p), kernels.WithAccelerator(g)); err == nil {
		t.Error("a plan that quantises on the GPU: got no error")
	}
}

// declining is a GPU that declines ternary products (as a device does for
// shapes it cannot hold): the engine must run them on the CPU.
type declining struct{ *metal.GPU }

func (d declining) MatMulMany([][]float32, []*ternary.Matrix, *kernels.Activations) error {
	return fmt.Errorf("too big: %w", metal.ErrDeclined)
}

func TestDeclinedRunsOnCPU(t *testing.T) {
	g, _ := emulated(t)
	e := gpuEngine(t, declining{g})
	cpu := generic(t)
	rng := rand.New(rand.NewPCG(25, 26))
	w := ternaryMatrix(t, rng, 9, 300)
	for _, n := range []int{1, 5} {
		a := activations(t, rng, n, 300)
		want, got := make([]float32, 9*n), make([]float32, 9*n)
		if err := cpu.MatMul(want, w, a); err != nil {
			t.Fatal(err)
		}
		if err := e.MatMul(got, w, a); err != nil {
			t.Fatal(err)
		}
		sameBits(t, "declined", got, want)
		ys := [][]float32{got, make([]float32, 9*n)}
		if err := e.MatMuls(ys, []*ternary.Matrix{w, w}, a, false); err != nil {
			t.Fatal(err)
		}
		sameBits(t, "declined batch", ys[1], want)
	}
}

// TestMeasureTimesTheGPU: a plan measured with an accelerator times it on
// every product class, keys its cache apart, and can choose it.
func TestMeasureTimesTheGPU(t *testing.T) {
	g, _ := emulated(t)
	mc := kernels.MeasureConfig{
		Shapes: [][2]int{{32, 256}}, MinTime: time.Millisecond, Reps: 1, ColdBytes: 64 << 10, Accelerator: g,
	}
	ts, err := kernels.Measure(context.Background(), mc)
	if err != nil {
		t.Fatal(err)
	}
	timed := map[kernels.Class]bool{}
	for _, tm := range ts {
		if tm.Variant == kernels.Variant(kernels.Metal) {
			timed[tm.Class] = true
		}
	}
	for _, c := range kernels.Classes() {
		if want := c != kernels.Quantize; timed[c] != want {
			t.Errorf("class %s: metal timed %t, want %t", c, timed[c], want)
		}
	}
	dir := t.TempDir()
	withGPU, err := kernels.LoadPlan(context.Background(), kernels.PlanConfig{Mode: kernels.PlanAuto, Dir: dir, Measure: mc})
	if err != nil {
		t.Fatal(err)
	}
	mc.Accelerator = nil
	without, err := kernels.LoadPlan(context.Background(), kernels.PlanConfig{Mode: kernels.PlanAuto, Dir: dir, Measure: mc})
	if err != nil {
		t.Fatal(err)
	}
	if withGPU.Key == without.Key || without.UsesAccelerator() {
		t.Errorf("plans with and without the GPU: keys %s and %s, the CPU's %s", withGPU.Key, without.Key, without)
	}
	// Forced to the GPU by the timings, the choice is metal.
	fake := slices.Clone(ts)
	for i := range fake {
		if fake[i].Variant == kernels.Variant(kernels.Metal) {
			fake[i].NsPerOp = 1
		}
	}
	choice := kernels.Choose(fake, kernels.StaticPlan().Choice)
	if choice[kernels.GEMVMemory] != kernels.Variant(kernels.Metal) || choice[kernels.Quantize] == kernels.Variant(kernels.Metal) {
		t.Errorf("choice %v: want metal for products, the CPU for quantize", choice)
	}
	if _, err := kernels.New(kernels.WithPlan(kernels.Plan{Choice: choice}), kernels.WithAccelerator(g)); err != nil {
		t.Errorf("engine on the chosen plan: %v", err)
	}
}

// TestModelOnGPU: a whole model (prefill, then decode steps) computes the
// same logits, bit for bit, with its products on the GPU as on the CPU,
// for every head format.
func TestModelOnGPU(t *testing.T) {
	g, _ := emulated(t)
	const dir = "../../testdata/models/tiny-gqa-packed"
	for _, head := range []kernels.HeadFormat{kernels.HeadInt8, kernels.HeadInt6, kernels.HeadInt4} {
		t.Run(string(head), func(t *testing.T) {
			// The CPU's best path: its products are the generic path's
			// bits, and its float loops are the ones the GPU engine's
			// float work runs (the generic path's have no FMA).
			ce, err := kernels.New(kernels.WithPath(kernels.Best()), kernels.WithThreads(1))
			if err != nil {
				t.Fatal(err)
			}
			defer ce.Close()
			cpu, err := model.Load(dir, model.WithEngine(ce), model.WithHeadFormat(head))
			if err != nil {
				t.Fatal(err)
			}
			defer cpu.Close()
			gm, err := model.Load(dir, model.WithEngine(gpuEngine(t, g)), model.WithHeadFormat(head))
			if err != nil {
				t.Fatal(err)
			}
			defer gm.Close()
			// Weights are mapped in place; the head's row scales are copied.
			if want := int64(4 * gm.Config().VocabSize); gm.DeviceBytes() != want {
				t.Errorf("DeviceBytes = %d, want %d (the head's scales)", gm.DeviceBytes(), want)
			}
			before := g.Stats().Products
			prompt := []int{598, 17, 230, 5, 99, 311, 42, 7, 500, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
			cs, gs := cpu.NewSequence(), gm.NewSequence()
			steps := [][]int{prompt, {77}, {78}, {79}}
			for i, toks := range steps {
				sc := []model.Step{{Seq: cs, Tokens: toks, AllLogits: i == 0}}
				sg := []model.Step{{Seq: gs, Tokens: toks, AllLogits: i == 0}}
				if err := cpu.Forward(context.Background(), sc); err != nil {
					t.Fatal(err)
				}
				if err := gm.Forward(context.Background(), sg); err != nil {
					t.Fatal(err)
				}
				sameBits(t, fmt.Sprintf("step %d logits", i), sg[0].Logits, sc[0].Logits)
			}
			if g.Stats().Products == before {
				t.Error("the GPU ran no product")
			}
		})
	}
}
