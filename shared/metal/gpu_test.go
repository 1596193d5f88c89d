package metal_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"runtime"
	"slices"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metal"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metal/emulator"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// EnvRequireEmulator makes the emulated tests fail, not skip, without
// clang (CI sets it).
const EnvRequireEmulator = "BITNET_REQUIRE_EMULATOR"

// startEmulator returns a GPU over a fresh emulator, or nil and why not:
// no clang, or macOS, where the real GPU is tested instead (either is a
// failure when EnvRequireEmulator is set).
func startEmulator(t testing.TB, opts ...emulator.Option) (*metal.GPU, *emulator.Backend, string) {
	t.Helper()
	required := os.Getenv(EnvRequireEmulator) != ""
	if runtime.GOOS == "darwin" && !required {
		return nil, nil, "the emulator runs on Linux; on macOS the real GPU is tested (set " + EnvRequireEmulator + "=1 to try)"
	}
	bin, err := emulator.Shared()
	if errors.Is(err, emulator.ErrNoCompiler) && !required {
		return nil, nil, fmt.Sprintf("%v (set %s=1 to fail instead)", err, EnvRequireEmulator)
	}
	if err != nil {
		t.Fatal(err)
	}
	b, err := emulator.Start(bin, opts...)
	if err != nil {
		t.Fatal(err)
	}
	g := metal.New(b)
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return g, b, ""
}

// emulated is startEmulator that skips the test without an emulator.
func emulated(t testing.TB, opts ...emulator.Option) (*metal.GPU, *emulator.Backend) {
	t.Helper()
	g, b, why := startEmulator(t, opts...)
	if g == nil {
		t.Skip(why)
	}
	return g, b
}

// device is a GPU under test.
type device struct {
	name string
	gpu  *metal.GPU
}

// devices returns the GPUs to test: the emulator where clang is (Linux),
// the real Metal GPU on a Mac (realGPU, gpu_darwin_arm64_test.go).
func devices(t *testing.T) []device {
	t.Helper()
	var ds []device
	if g, _, why := startEmulator(t); g != nil {
		ds = append(ds, device{"emulator", g})
	} else {
		t.Log(why)
	}
	if g := realGPU(t); g != nil {
		ds = append(ds, device{"metal", g})
	}
	if len(ds) == 0 {
		t.Skip("no emulator (clang) and no Metal GPU here")
	}
	return ds
}

// generic is the reference: package kernels' pure-Go path.
func generic(t testing.TB) *kernels.Engine {
	t.Helper()
	e, err := kernels.New(kernels.WithPath(kernels.Generic), kernels.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// activations quantises n tokens of k features drawn with varied
// magnitudes (outliers, tiny and all-zero tokens), so that scales and dots
// cover a wide range.
func activations(t testing.TB, rng *rand.Rand, n, k int) *kernels.Activations {
	t.Helper()
	x := make([]float32, n*k)
	for tok := range n {
		mag := float32(math.Pow(10, rng.Float64()*8-4))
		for i := range k {
			x[tok*k+i] = float32(rng.NormFloat64()) * mag
		}
		switch tok % 7 {
		case 3:
			x[tok*k+rng.IntN(k)] *= 1000
		case 5:
			clear(x[tok*k : (tok+1)*k])
		}
	}
	a := kernels.NewActivations(n, k)
	if err := a.Quantize(x); err != nil {
		t.Fatal(err)
	}
	return a
}

func ternaryMatrix(t testing.TB, rng *rand.Rand, rows, cols int) *ternary.Matrix {
	t.Helper()
	v := make([]int8, rows*cols)
	for i := range v {
		v[i] = int8(rng.IntN(3)) - 1
	}
	w, err := ternary.Pack(rows, cols, v, float32(math.Pow(2, rng.Float64()*20-10)))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func floatMatrix(rng *rand.Rand, rows, cols int) []float32 {
	w := make([]float32, rows*cols)
	for r := range rows {
		mag := float32(math.Pow(10, rng.Float64()*4-2))
		for c := range cols {
			w[r*cols+c] = float32(rng.NormFloat64()) * mag
		}
	}
	return w
}

// sameBits fails unless got and want are identical bit for bit (NaNs
// match whatever their payload: metal.SameFloat).
func sameBits(t testing.TB, what string, got, want []float32) {
	t.Helper()
	bad := 0
	for i := range want {
		if !metal.SameFloat(got[i], want[i]) {
			if bad < 5 {
				t.Errorf("%s: y[%d] = %g (%#08x), want %g (%#08x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d outputs differ", what, bad, len(want))
	}
}

// check runs one product of size outputs on the reference (cpu) and on a
// GPU (gpu) and compares the bits.
func check(t testing.TB, what string, size int, cpu, gpu func([]float32) error) {
	t.Helper()
	want, got := make([]float32, size), make([]float32, size)
	if err := cpu(want); err != nil {
		t.Fatalf("%s on the CPU: %v", what, err)
	}
	if err := gpu(got); err != nil {
		t.Fatalf("%s on the GPU: %v", what, err)
	}
	sameBits(t, what, got, want)
}

// shapes are rows x cols: tails of every tile (rows not a multiple of the
// 8 and 16 rows per threadgroup, columns not a multiple of 256), one and
// several GEMM activation tiles (MM_KC = 2048 bytes).
var shapes = [][2]int{{1, 1}, {3, 100}, {8, 256}, {13, 257}, {17, 640}, {40, 1000}, {5, 2304}, {33, 4100}}

// tokenCounts are the token counts checked on every shape; every n in
// 1..70 runs on one shape (TestAllTokenCounts).
var tokenCounts = []int{1, 2, 7, 8, 9, 33}

func TestTernaryMatchesGeneric(t *testing.T) {
	for _, d := range devices(t) {
		t.Run(d.name, func(t *testing.T) { testTernaryMatchesGeneric(t, d.gpu) })
	}
}

func testTernaryMatchesGeneric(t *testing.T, g *metal.GPU) {
	e := generic(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sh := range shapes {
		w := ternaryMatrix(t, rng, sh[0], sh[1])
		for _, n := range tokenCounts {
			a := activations(t, rng, n, sh[1])
			check(t, fmt.Sprintf("ternary %dx%d n=%d", sh[0], sh[1], n), n*sh[0], func(y []float32) error { return e.MatMul(y, w, a) },
				func(y []float32) error { return g.MatMul(y, w, a) })
		}
	}
}

func TestAllTokenCounts(t *testing.T) {
	for _, d := range devices(t) {
		t.Run(d.name, func(t *testing.T) { testAllTokenCounts(t, d.gpu) })
	}
}

func testAllTokenCounts(t *testing.T, g *metal.GPU) {
	e := generic(t)
	rng := rand.New(rand.NewPCG(3, 4))
	rows, cols := 19, 300
	if testing.Short() {
		rows, cols = 9, 200
	}
	w := ternaryMatrix(t, rng, rows, cols)
	h8, err := kernels.NewInt8Matrix(rows, cols, floatMatrix(rng, rows, cols))
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 70; n++ {
		a := activations(t, rng, n, cols)
		check(t, fmt.Sprintf("ternary n=%d", n), n*rows, func(y []float32) error { return e.MatMul(y, w, a) },
			func(y []float32) error { return g.MatMul(y, w, a) })
		check(t, fmt.Sprintf("int8 n=%d", n), n*rows, func(y []float32) error { return e.MatMulInt8(y, h8, a) },
			func(y []float32) error { return g.MatMulInt8(y, h8, a) })
	}
}

func TestHeadsMatchGeneric(t *testing.T) {
	for _, d := range devices(t) {
		t.Run(d.name, func(t *testing.T) { testHeadsMatchGeneric(t, d.gpu) })
	}
}

func testHeadsMatchGeneric(t *testing.T, g *metal.GPU) {
	e := generic(t)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, sh := range shapes {
		rows, cols := sh[0], sh[1]
		wf := floatMatrix(rng, rows, cols)
		h8, err := kernels.NewInt8Matrix(rows, cols, wf)
		if err != nil {
			t.Fatal(err)
		}
		var packed []*kernels.PackedMatrix
		for _, bits := range []int{6, 4} {
			p, err := kernels.NewPackedMatrix(rows, cols, bits, wf)
			if err != nil {
				t.Fatal(err)
			}
			packed = append(packed, p)
		}
		for _, n := range tokenCounts {
			a := activations(t, rng, n, cols)
			check(t, fmt.Sprintf("int8 %dx%d n=%d", rows, cols, n), n*rows, func(y []float32) error { return e.MatMulInt8(y, h8, a) },
				func(y []float32) error { return g.MatMulInt8(y, h8, a) })
			for _, p := range packed {
				check(t, fmt.Sprintf("int%d %dx%d n=%d", p.Bits, rows, cols, n), n*rows, func(y []float32) error { return e.MatMulPacked(y, p, a) },
					func(y []float32) error { return g.MatMulPacked(y, p, a) })
			}
		}
	}
}

// TestLargeDots drives the int8 dots past 2^24, where int-to-float
// conversion rounds (i2f_rn), and the scales to the ends of their range.
func TestLargeDots(t *testing.T) {
	for _, d := range devices(t) {
		t.Run(d.name, func(t *testing.T) { testLargeDots(t, d.gpu) })
	}
}

func testLargeDots(t *testing.T, g *metal.GPU) {
	e := generic(t)
	rng := rand.New(rand.NewPCG(7, 8))
	rows, cols := 9, 4096
	wf := make([]float32, rows*cols)
	for i := range wf {
		wf[i] = float32(1 + rng.IntN(2)) // rows of 127s and 63s
		if i%cols == 0 {
			wf[i] = 2
		}
	}
	for r := 0; r < rows; r += 2 {
		for c := range cols {
			wf[r*cols+c] *= -1
		}
	}
	h8, err := kernels.NewInt8Matrix(rows, cols, wf)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 3} {
		x := make([]float32, n*cols)
		for i := range x {
			x[i] = float32(100 + rng.IntN(28)) // q near 127
		}
		x[0] = 1e30 // a huge token: tiny scale
		a := kernels.NewActivations(n, cols)
		if err := a.Quantize(x); err != nil {
			t.Fatal(err)
		}
		check(t, fmt.Sprintf("large int8 dots n=%d", n), n*rows, func(y []float32) error { return e.MatMulInt8(y, h8, a) },
			func(y []float32) error { return g.MatMulInt8(y, h8, a) })
	}
	// A zero tensor scale takes div_rn's fallback: 0 / s = 0.
	w := ternaryMatrix(t, rng, 5, 300)
	w.Scale = 0
	a := activations(t, rng, 2, 300)
	check(t, "zero scale", 10, func(y []float32) error { return e.MatMul(y, w, a) },
		func(y []float32) error { return g.MatMul(y, w, a) })
}

func TestQuantizeMatchesGeneric(t *testing.T) {
	for _, d := range devices(t) {
		t.Run(d.name, func(t *testing.T) { testQuantizeMatchesGeneric(t, d.gpu) })
	}
}

func testQuantizeMatchesGeneric(t *testing.T, g *metal.GPU) {
	e := generic(t)
	rng := rand.New(rand.NewPCG(9, 10))
	for _, k := range []int{1, 31, 256, 300, 2560} {
		for _, n := range []int{1, 5, 17} {
			x := make([]float32, n*k)
			for i := range x {
				x[i] = float32(rng.NormFloat64() * math.Pow(10, rng.Float64()*6-3))
			}
			// Ties of round-half-even, zeros, Inf and NaN tokens.
			x[0] = 0.5
			if n > 1 {
				clear(x[k : 2*k])
			}
			if n > 2 {
				x[2*k+k/2] = float32(math.Inf(-1))
			}
			if n > 3 {
				x[3*k] = float32(math.NaN())
			}
			if n > 4 {
				for i := range k {
					x[4*k+i] = float32(i%5) - 2 // max 2: scale 63.5, exact halves
				}
			}
			want, got := kernels.NewActivations(n, k), kernels.NewActivations(n, k)
			if err := e.Quantize(want, x); err != nil {
				t.Fatal(err)
			}
			// Stale bytes in got must not survive.
			for i := range got.Q {
				got.Q[i] = int8(i)
			}
			if err := g.Quantize(got, x); err != nil {
				t.Fatal(err)
			}
			what := fmt.Sprintf("quantize n=%d k=%d", n, k)
			if !slices.Equal(got.Q, want.Q) {
				i := slices.IndexFunc(got.Q, func(v int8) bool { return false })
				for j := range got.Q {
					if got.Q[j] != want.Q[j] {
						i = j
						break
					}
				}
				t.Errorf("%s: q[%d] = %d, want %d", what, i, got.Q[i], want.Q[i])
			}
			sameBits(t, what+" scales", got.Scale, want.Scale)
			if !slices.Equal(got.Sum, want.Sum) {
				t.Errorf("%s: sums %v, want %v", what, got.Sum, want.Sum)
			}
		}
	}
}

// TestOrders reruns products with the threads of every threadgroup (and
// the threadgroups) in other orders: a kernel whose results depend on the
// order between synchronisation points has a race.
func TestOrders(t *testing.T) {
	e := generic(t)
	for _, o := range []struct {
		name  string
		order emulator.Order
	}{{"descending", emulator.Descending}, {"shuffled", emulator.Shuffled}} {
		t.Run(o.name, func(t *testing.T) {
			g, _ := emulated(t, emulator.WithOrder(o.order, 42))
			rng := rand.New(rand.NewPCG(11, 12))
			rows, cols := 21, 2600
			w := ternaryMatrix(t, rng, rows, cols)
			wf := floatMatrix(rng, rows, cols)
			p6, err := kernels.NewPackedMatrix(rows, cols, 6, wf)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{1, 10} {
				a := activations(t, rng, n, cols)
				check(t, fmt.Sprintf("ternary n=%d", n), n*rows, func(y []float32) error { return e.MatMul(y, w, a) },
					func(y []float32) error { return g.MatMul(y, w, a) })
				check(t, fmt.Sprintf("int6 n=%d", n), n*rows, func(y []float32) error { return e.MatMulPacked(y, p6, a) },
					func(y []float32) error { return g.MatMulPacked(y, p6, a) })
			}
			x := floatMatrix(rng, 3, cols)
			want, got := kernels.NewActivations(3, cols), kernels.NewActivations(3, cols)
			if err := e.Quantize(want, x); err != nil {
				t.Fatal(err)
			}
			if err := g.Quantize(got, x); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Q, want.Q) || !slices.Equal(got.Sum, want.Sum) {
				t.Errorf("quantize differs in %s order", o.name)
			}
		})
	}
}

// TestMany runs several matrices in one command buffer, and the copy path
// (weights the device cannot map).
func TestMany(t *testing.T) {
	g, _ := emulated(t, emulator.WithCopies())
	e := generic(t)
	rng := rand.New(rand.NewPCG(13, 14))
	cols := 512
	ws := []*ternary.Matrix{ternaryMatrix(t, rng, 24, cols), ternaryMatrix(t, rng, 8, cols), ternaryMatrix(t, rng, 8, cols)}
	for _, n := range []int{1, 4} {
		a := activations(t, rng, n, cols)
		ys := make([][]float32, len(ws))
		for i, w := range ws {
			ys[i] = make([]float32, n*w.Rows)
		}
		if err := g.MatMulMany(ys, ws, a); err != nil {
			t.Fatal(err)
		}
		for i, w := range ws {
			want := make([]float32, n*w.Rows)
			if err := e.MatMul(want, w, a); err != nil {
				t.Fatal(err)
			}
			sameBits(t, fmt.Sprintf("matrix %d n=%d", i, n), ys[i], want)
		}
	}
	st := g.Stats()
	if st.MappedBytes != 0 || st.CopiedBytes != int64(40*cols/4) {
		t.Errorf("got %+v, want 0 mapped and %d copied bytes", st, 40*cols/4)
	}
	if st.ScratchBytes <= 0 || g.ResidentBytes() != st.CopiedBytes+st.ScratchBytes {
		t.Errorf("got %+v, resident %d", st, g.ResidentBytes())
	}
}

func TestShapeErrors(t *testing.T) {
	for _, d := range devices(t) {
		t.Run(d.name, func(t *testing.T) { testShapeErrors(t, d.gpu) })
	}
}

func testShapeErrors(t *testing.T, g *metal.GPU) {
	rng := rand.New(rand.NewPCG(15, 16))
	w := ternaryMatrix(t, rng, 4, 300)
	a := activations(t, rng, 2, 300)
	other := activations(t, rng, 2, 200)
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"short output", g.MatMul(make([]float32, 7), w, a)},
		{"cols", g.MatMul(make([]float32, 8), w, other)},
		{"nil weights", g.MatMul(make([]float32, 8), nil, a)},
		{"nil activations", g.MatMul(make([]float32, 8), w, nil)},
		{"int8 nil", g.MatMulInt8(make([]float32, 8), nil, a)},
		{"packed nil", g.MatMulPacked(make([]float32, 8), nil, a)},
		{"quantize floats", g.Quantize(kernels.NewActivations(2, 300), make([]float32, 599))},
	} {
		if !errors.Is(tc.err, kernels.ErrShape) {
			t.Errorf("%s: got %v, want kernels.ErrShape", tc.name, tc.err)
		}
	}
}

// TestEveryKernelEmulated checks that the emulator's driver knows every
// kernel the source declares.
func TestEveryKernelEmulated(t *testing.T) {
	_, b := emulated(t)
	got, err := b.Kernels()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range regexp.MustCompile(`(?m)^kernel void (\w+)\(`).FindAllStringSubmatch(metal.Source(), -1) {
		want = append(want, m[1])
	}
	slices.Sort(got)
	slices.Sort(want)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("emulator kernels %v, source declares %v", got, want)
	}
}
