package kernels

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// randTernary returns a rows x cols matrix with random codes; mode "zero",
// "plus" or "minus" fills every weight with 0, +1 or -1 instead.
func randTernary(t testing.TB, rng *rand.Rand, rows, cols int, mode string) *ternary.Matrix {
	t.Helper()
	v := make([]int8, rows*cols)
	for i := range v {
		switch mode {
		case "zero":
		case "plus":
			v[i] = 1
		case "minus":
			v[i] = -1
		default:
			v[i] = int8(rng.IntN(3)) - 1
		}
	}
	m, err := ternary.Pack(rows, cols, v, 0.5+rng.Float32())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// randActivations returns n tokens of k features; mode "max" and "min" set
// every q to 127 or -128 (with a consistent Sum), otherwise random floats are
// quantized.
func randActivations(t testing.TB, rng *rand.Rand, n, k int, mode string) *Activations {
	t.Helper()
	a := NewActivations(n, k)
	x := make([]float32, n*k)
	for i := range x {
		x[i] = float32(rng.NormFloat64()) * 3
	}
	if err := a.Quantize(x); err != nil {
		t.Fatal(err)
	}
	if mode == "max" || mode == "min" {
		v := int8(127)
		if mode == "min" {
			v = -128
		}
		for tk := range n {
			for i := range k {
				a.Q[tk*a.Stride+i] = v
			}
			a.Sum[tk] = int32(v) * int32(k)
		}
	}
	return a
}

func randInt8(t testing.TB, rng *rand.Rand, rows, cols int, mode string) *Int8Matrix {
	t.Helper()
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	m, err := NewInt8Matrix(rows, cols, w)
	if err != nil {
		t.Fatal(err)
	}
	if mode == "min" || mode == "max" {
		for r := range rows {
			for c := range cols {
				m.Data[r*m.Stride+c] = map[string]int8{"min": -128, "max": 127}[mode]
			}
		}
	}
	return m
}

func newEngine(t testing.TB, p Path, threads int) *Engine {
	t.Helper()
	e, err := New(WithPath(p), WithThreads(threads))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// variantPlan assigns variant v to every class.
func variantPlan(v Variant) Plan {
	p := Plan{Choice: map[Class]Variant{}, Source: "test"}
	for _, c := range Classes() {
		p.Choice[c] = v
	}
	return p
}

// variantEngines returns an engine per variant this CPU runs and thread count in 1..4.
func variantEngines(t testing.TB) []*Engine {
	var engines []*Engine
	for _, v := range Variants() {
		for th := 1; th <= 4; th++ {
			e, err := New(WithPlan(variantPlan(v)), WithThreads(th))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(e.Close)
			engines = append(engines, e)
		}
	}
	return engines
}

// firstDiff reports the first index where got and want differ bit for bit.
func firstDiff(got, want []float32) (int, bool) {
	for i := range want {
		if got[i] != want[i] && !(got[i] != got[i] && want[i] != want[i]) {
			return i, false
		}
	}
	return 0, len(got) == len(want)
}

type shapeCase struct {
	rows, cols, n int
	wmode, qmode  string
}

func shapeCases(rng *rand.Rand, short bool) []shapeCase {
	cs := []shapeCase{
		{1, 1, 1, "", ""}, {1, 256, 1, "", ""}, {3, 255, 2, "", ""}, {8, 257, 5, "", ""},
		{13, 300, 70, "", ""}, {17, 511, 9, "", ""}, {64, 1000, 4, "zero", ""},
		{33, 768, 3, "plus", "max"}, {33, 768, 3, "minus", "min"}, {9, 20000, 2, "", "min"},
		{5, 20000, 1, "plus", "min"}, {300, 2560, 1, "", ""}, {300, 640, 8, "", "max"},
	}
	m, maxRows, maxCols, maxN := 40, 300, 5000, 70
	if short {
		m, maxRows, maxCols, maxN = 12, 100, 2000, 20
	}
	for range m {
		cs = append(cs, shapeCase{1 + rng.IntN(maxRows), 1 + rng.IntN(maxCols), 1 + rng.IntN(maxN), "", ""})
	}
	for range m / 4 {
		cs = append(cs, shapeCase{1 + rng.IntN(40), 256 + rng.IntN(20000-256), 1 + rng.IntN(3), "", ""})
	}
	return cs
}

// TestMatMulPathsMatchGeneric checks every supported variant, at 1..4
// threads, from memory and cache-resident, bit for bit against the generic kernel.
func TestMatMulPathsMatchGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	gen := newEngine(t, Generic, 1)
	engines := variantEngines(t)
	for _, c := range shapeCases(rng, testing.Short() || raceBuild) {
		w := randTernary(t, rng, c.rows, c.cols, c.wmode)
		a := randActivations(t, rng, c.n, c.cols, c.qmode)
		want := make([]float32, c.n*c.rows)
		if err := gen.MatMul(want, w, a); err != nil {
			t.Fatal(err)
		}
		for i, e := range engines {
			got := make([]float32, len(want))
			mm := e.MatMul
			if i%2 == 1 {
				mm = e.MatMulResident
			}
			if err := mm(got, w, a); err != nil {
				t.Fatal(err)
			}
			if i, ok := firstDiff(got, want); !ok {
				t.Fatalf("%s/%d threads, %dx%d n=%d (%s,%s): y[%d] got %v, want %v",
					e.Variant(GEMMLarge), e.Threads(), c.rows, c.cols, c.n, c.wmode, c.qmode, i, got[i], want[i])
			}
		}
	}
}

// TestMatMulExact checks the generic kernel against a dense int64 reference.
func TestMatMulExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	e := newEngine(t, Generic, 1)
	for _, c := range []shapeCase{{7, 300, 3, "", ""}, {4, 513, 2, "minus", "min"}, {2, 1, 1, "plus", "max"}} {
		w := randTernary(t, rng, c.rows, c.cols, c.wmode)
		a := randActivations(t, rng, c.n, c.cols, c.qmode)
		dense := w.Unpack()
		got := make([]float32, c.n*c.rows)
		if err := e.MatMul(got, w, a); err != nil {
			t.Fatal(err)
		}
		for tk := range c.n {
			for r := range c.rows {
				var d int64
				for i := range c.cols {
					d += int64(dense[r*c.cols+i]) * int64(a.Q[tk*a.Stride+i])
				}
				want := float32(int32(d)) * (w.Scale / a.Scale[tk])
				if got[tk*c.rows+r] != want {
					t.Fatalf("%dx%d token %d row %d: got %v, want %v", c.rows, c.cols, tk, r, got[tk*c.rows+r], want)
				}
			}
		}
	}
}

func TestMatMulInt8PathsMatchGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	gen := newEngine(t, Generic, 1)
	engines := variantEngines(t)
	cases := shapeCases(rng, true)[:12+6]
	cases = append(cases, shapeCase{7, 3000, 3, "min", "min"}, shapeCase{7, 3000, 5, "max", "min"}, shapeCase{9, 3000, 1, "min", "max"})
	for _, c := range cases {
		w := randInt8(t, rng, c.rows, c.cols, c.wmode)
		a := randActivations(t, rng, c.n, c.cols, c.qmode)
		want := make([]float32, c.n*c.rows)
		if err := gen.MatMulInt8(want, w, a); err != nil {
			t.Fatal(err)
		}
		for _, e := range engines {
			got := make([]float32, len(want))
			if err := e.MatMulInt8(got, w, a); err != nil {
				t.Fatal(err)
			}
			if i, ok := firstDiff(got, want); !ok {
				t.Fatalf("%s/%d threads, int8 %dx%d n=%d (%s,%s): y[%d] got %v, want %v",
					e.Variant(GEMMLarge), e.Threads(), c.rows, c.cols, c.n, c.wmode, c.qmode, i, got[i], want[i])
			}
		}
	}
}

// TestConcurrentCallers shares one engine between goroutines.
func TestConcurrentCallers(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, p := range Supported() {
		e := newEngine(t, p, 3)
		gen := newEngine(t, Generic, 1)
		type job struct {
			w    *ternary.Matrix
			a    *Activations
			want []float32
		}
		var jobs []job
		for range 8 {
			rows, cols, n := 16+rng.IntN(200), 256+rng.IntN(3000), 1+rng.IntN(9)
			w, a := randTernary(t, rng, rows, cols, ""), randActivations(t, rng, n, cols, "")
			want := make([]float32, n*rows)
			if err := gen.MatMul(want, w, a); err != nil {
				t.Fatal(err)
			}
			jobs = append(jobs, job{w, a, want})
		}
		var wg sync.WaitGroup
		errs := make(chan error, len(jobs))
		for i, j := range jobs {
			wg.Go(func() {
				got := make([]float32, len(j.want))
				for range 20 {
					if err := e.MatMul(got, j.w, j.a); err != nil {
						errs <- err
						return
					}
					if k, ok := firstDiff(got, j.want); !ok {
						errs <- fmt.Errorf("%s job %d: y[%d] got %v, want %v", p, i, k, got[k], j.want[k])
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}

func TestCloseThenUse(t *testing.T) {
	e, err := New(WithThreads(4))
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	e.Close()
	rng := rand.New(rand.NewPCG(9, 9))
	w, a := randTernary(t, rng, 200, 3000, ""), randActivations(t, rng, 2, 3000, "")
	y := make([]float32, 400)
	if err := e.MatMul(y, w, a); err != nil {
		t.Fatalf("MatMul after Close: got %v, want nil", err)
	}
}

func TestBadInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	w := randTernary(t, rng, 4, 300, "")
	a := randActivations(t, rng, 2, 300, "")
	a2 := randActivations(t, rng, 2, 600, "")
	wi := randInt8(t, rng, 4, 300, "")
	for _, p := range Supported() {
		e := newEngine(t, p, 2)
		for _, c := range []struct {
			name string
			err  error
		}{
			{"nil w", e.MatMul(make([]float32, 8), nil, a)},
			{"nil a", e.MatMul(make([]float32, 8), w, nil)},
			{"K mismatch", e.MatMul(make([]float32, 8), w, a2)},
			{"y short", e.MatMul(make([]float32, 7), w, a)},
			{"y nil", e.MatMul(nil, w, a)},
			{"bad activations", e.MatMul(make([]float32, 8), w, &Activations{N: 2, K: 300, Stride: 512})},
			{"bad weights", e.MatMul(make([]float32, 8), &ternary.Matrix{Rows: 4, Cols: 300, Stride: 128}, a)},
			{"int8 nil", e.MatMulInt8(make([]float32, 8), nil, a)},
			{"int8 K mismatch", e.MatMulInt8(make([]float32, 8), wi, a2)},
			{"int8 y short", e.MatMulInt8(make([]float32, 9), wi, a)},
			{"int8 short data", e.MatMulInt8(make([]float32, 8), &Int8Matrix{Rows: 4, Cols: 300, Stride: 512}, a)},
		} {
			if !errors.Is(c.err, ErrShape) {
				t.Errorf("%s %s: got %v, want ErrShape", p, c.name, c.err)
			}
		}
	}
	e0 := newEngine(t, Generic, 1)
	var nilEngine *Engine
	if err := nilEngine.MatMul(nil, w, a); err == nil {
		t.Error("nil engine: got nil error")
	}
	neg := NewActivations(-1, -5)
	if err := e0.MatMul(nil, w, neg); !errors.Is(err, ErrShape) {
		t.Errorf("NewActivations(-1, -5): got %v, want ErrShape", err)
	}
	if s, sum := QuantizeRow(make([]int8, 1), []float32{2, 4}); s != 127/float32(2) || sum != 127 {
		t.Errorf("QuantizeRow with short q: got %v, %d, want %v, 127", s, sum, 127/float32(2))
	}
	if err := a.Quantize(make([]float32, 5)); !errors.Is(err, ErrShape) {
		t.Errorf("Quantize short: got %v, want ErrShape", err)
	}
	if _, err := NewInt8Matrix(2, 3, make([]float32, 5)); !errors.Is(err, ErrShape) {
		t.Errorf("NewInt8Matrix short: got %v, want ErrShape", err)
	}
	if _, err := NewInt8Matrix(0, 3, nil); !errors.Is(err, ErrShape) {
		t.Errorf("NewInt8Matrix 0 rows: got %v, want ErrShape", err)
	}
}

// TestHugeK crosses maxTileCols, where the SIMD paths fall back to generic.
func TestHugeK(t *testing.T) {
	if testing.Short() || raceBuild {
		t.Skip("allocates 20 MiB")
	}
	rng := rand.New(rand.NewPCG(11, 12))
	cols := maxTileColsForTest + 1
	w := fastTernary(rng, 2, cols)
	a := randActivations(t, rng, 1, cols, "")
	want := make([]float32, 2)
	if err := newEngine(t, Generic, 1).MatMul(want, w, a); err != nil {
		t.Fatal(err)
	}
	small := fastTernary(rng, 3, 1000)
	as := randActivations(t, rng, 2, 1000, "")
	q := append([]int8(nil), a.Q...)
	for _, p := range Supported() {
		e := newEngine(t, p, 2)
		got := make([]float32, 2)
		if err := e.MatMul(got, w, a); err != nil {
			t.Fatal(err)
		}
		if i, ok := firstDiff(got, want); !ok {
			t.Errorf("%s K=%d: y[%d] got %v, want %v", p, cols, i, got[i], want[i])
		}
		// A later product must not use a.Q as its scratch.
		if err := e.MatMul(make([]float32, 6), small, as); err != nil {
			t.Fatal(err)
		}
		if i, ok := firstDiffInt8(a.Q, q); !ok {
			t.Fatalf("%s: a.Q[%d] changed to %d, want %d", p, i, a.Q[i], q[i])
		}
	}
}

func firstDiffInt8(got, want []int8) (int, bool) {
	for i := range want {
		if got[i] != want[i] {
			return i, false
		}
	}
	return 0, true
}

// TestMatMulsMatchGeneric checks MatMuls (one hand-off to the pool for
// several matrices) for every variant at 1..4 threads, bit for bit against
// generic MatMul of each matrix, small matrices among large ones included.
func TestMatMulsMatchGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	gen := newEngine(t, Generic, 1)
	engines := variantEngines(t)
	for _, c := range []struct {
		rows []int
		cols int
	}{{[]int{5}, 300}, {[]int{640, 40, 40}, 512}, {[]int{1000, 1000}, 1024}, {[]int{33, 7, 200}, 2560}} {
		var ws []*ternary.Matrix
		for i, r := range c.rows {
			w := randTernary(t, rng, r, c.cols, "")
			if i%2 == 0 { // the -tq1 variants read these from the 1.6-bit layout
				if err := w.PackTrits(); err != nil {
					t.Fatal(err)
				}
			}
			ws = append(ws, w)
		}
		for _, n := range []int{1, 3, 8} {
			a := randActivations(t, rng, n, c.cols, "")
			var want [][]float32
			for _, w := range ws {
				y := make([]float32, n*w.Rows)
				if err := gen.MatMul(y, w, a); err != nil {
					t.Fatal(err)
				}
				want = append(want, y)
			}
			for _, e := range engines {
				got := make([][]float32, len(ws))
				for i, w := range ws {
					got[i] = make([]float32, n*w.Rows)
				}
				if err := e.MatMuls(got, ws, a, false); err != nil {
					t.Fatal(err)
				}
				for i := range ws {
					if k, ok := firstDiff(got[i], want[i]); !ok {
						t.Fatalf("%s/%d threads, matrix %d of %v x %d, n=%d: y[%d] got %v, want %v",
							e.Variant(GEMVMemory), e.Threads(), i, c.rows, c.cols, n, k, got[i][k], want[i][k])
					}
				}
			}
		}
	}
}

// TestHoldThenClose checks that Close returns while the engine is still
// held (the held workers poll for work and for the close).
func TestHoldThenClose(t *testing.T) {
	e, err := New(WithThreads(3))
	if err != nil {
		t.Fatal(err)
	}
	e.Hold()
	e.Hold()
	rng := rand.New(rand.NewPCG(3, 3))
	w, a := randTernary(t, rng, 256, 3000, ""), randActivations(t, rng, 1, 3000, "")
	y := make([]float32, 256)
	if err := e.MatMuls([][]float32{y}, []*ternary.Matrix{w}, a, false); err != nil {
		t.Fatal(err)
	}
	e.Release()
	done := make(chan struct{})
	go func() { e.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close of a held engine did not return in 10 s")
	}
	var nilEng *Engine
	nilEng.Hold()
	nilEng.Release()
}
