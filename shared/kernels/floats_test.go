package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/half"
)

func TestFloatOpsMatchGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 3))
	for _, n := range []int{0, 1, 3, 7, 8, 9, 31, 32, 33, 64, 100, 128, 1000} {
		a, b := make([]float32, n), make([]float32, n+5)
		for i := range a {
			a[i] = float32(r.NormFloat64())
		}
		for i := range b {
			b[i] = float32(r.NormFloat64())
		}
		got, want := simdF.Dot(a, b), DotGeneric(a, b)
		if math.Abs(float64(got-want)) > 1e-4*math.Sqrt(float64(n)+1) {
			t.Errorf("n=%d: dot got %g, want %g", n, got, want)
		}
		y1 := append([]float32(nil), a...)
		y2 := append([]float32(nil), a...)
		simdF.Axpy(y1, 0.75, b)
		axpyGeneric(y2, 0.75, b)
		if d := maxAbsDiff(y1, y2); d > 1e-6 {
			t.Errorf("n=%d: axpy differs by %g", n, d)
		}
	}
}

func BenchmarkDot128(b *testing.B) {
	x, y := make([]float32, 128), make([]float32, 128)
	for i := range x {
		x[i], y[i] = float32(i), float32(-i)
	}
	var s float32
	for b.Loop() {
		s += simdF.Dot(x, y)
	}
	_ = s
}

func TestWiden(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 40, 1 << 16} {
		src := make([]uint16, n)
		for i := range src {
			src[i] = uint16(i * 40503) // a permutation of all halves when n = 1<<16
			if src[i]&0x7c00 == 0x7c00 && src[i]&0x3ff != 0 {
				src[i] = 0x3c00 // NaN payloads may differ between conversions
			}
		}
		got := make([]float32, n)
		simdF.Widen(got, src)
		for i, h := range src {
			if want := half.FromFloat16(h); math.Float32bits(got[i]) != math.Float32bits(want) {
				t.Fatalf("n=%d: element %d (%#x): got %g, want %g", n, i, h, got[i], want)
			}
		}
	}
}

func TestRowOpsMatchGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, hd := range []int{1, 8, 16, 24, 64, 72, 128, 200} {
		for _, n := range []int{1, 2, 3, 4, 5, 9, 33} {
			stride := hd + 8*r.IntN(3)
			k := make([]float32, (n-1)*stride+hd)
			q, p := make([]float32, hd), make([]float32, n)
			for i := range k {
				k[i] = float32(r.NormFloat64())
			}
			for i := range q {
				q[i] = float32(r.NormFloat64())
			}
			for i := range p {
				p[i] = r.Float32()
			}
			got, want := make([]float32, n), make([]float32, n)
			simdF.DotRows(got, q, k, stride)
			Floats{}.DotRows(want, q, k, stride)
			if d := maxAbsDiff(got, want); d > 1e-4*math.Sqrt(float64(hd)) {
				t.Errorf("hd=%d n=%d: dotRows differs by %g", hd, n, d)
			}
			a, b := make([]float32, hd), make([]float32, hd)
			for i := range a {
				a[i], b[i] = 9, 9 // overwritten, not accumulated
			}
			simdF.AccumRows(a, p, k, stride)
			Floats{}.AccumRows(b, p, k, stride)
			if d := maxAbsDiff(a, b); d > 1e-4*math.Sqrt(float64(n)) {
				t.Errorf("hd=%d n=%d: accumRows differs by %g", hd, n, d)
			}
		}
	}
}

func BenchmarkAttentionRows(b *testing.B) {
	const n, hd, stride = 1024, 128, 640
	k := make([]float32, n*stride)
	for i := range k {
		k[i] = float32(i%7) - 3
	}
	q, out, acc := make([]float32, hd), make([]float32, n), make([]float32, hd)
	for b.Loop() {
		simdF.DotRows(out, q, k, stride)
		simdF.AccumRows(acc, out, k, stride)
	}
}

// simdF is the float loops of the best path (SIMD where the CPU has it),
// compared with the Go ones (Floats{}).
var simdF = FloatsFor(Best())

func maxAbsDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// TestFloatsForGeneric checks that a forced generic path runs no float SIMD.
func TestFloatsForGeneric(t *testing.T) {
	if f := FloatsFor(Generic); f.SIMD() || f.HalfRows(8) {
		t.Errorf("FloatsFor(generic) = %+v, want no SIMD", f)
	}
	e := newEngine(t, Generic, 1)
	if e.Floats().SIMD() {
		t.Error("generic engine's Floats use SIMD")
	}
}

// TestExpf32 checks the float32 exponential against math.Exp over the
// range a softmax feeds it, and its clamp below.
func TestExpf32(t *testing.T) {
	worst := 0.0
	for x := float32(-87); x <= 88; x += 0.00731 {
		got, want := float64(expf32(x)), math.Exp(float64(x))
		worst = max(worst, math.Abs(got-want)/want)
	}
	if worst > 2e-7 {
		t.Errorf("expf32: worst relative error %.3g, want under 2e-7", worst)
	}
	for _, x := range []float32{-88, -100, float32(math.Inf(-1))} {
		if got := expf32(x); got > 1.2e-38 || got < 0 {
			t.Errorf("expf32(%v) = %v, want about 1.18e-38 (the clamp)", x, got)
		}
	}
	if got := expf32(0); got != 1 {
		t.Errorf("expf32(0) = %v, want 1", got)
	}
}

// TestSoftmax checks the SIMD softmax against the Go one, and every SIMD
// exponential against expf32 bit for bit.
func TestSoftmax(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 7, 8, 9, 31, 160, 1000} {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(r.NormFloat64() * 30)
		}
		const scale = 0.08838835 // 1/sqrt(128)
		got, want := append([]float32(nil), s...), append([]float32(nil), s...)
		simdF.Softmax(got, scale)
		Floats{}.Softmax(want, scale)
		if d := maxAbsDiff(got, want); d > 1e-6 {
			t.Errorf("n=%d: SIMD softmax differs from Go by %.3g, want under 1e-6", n, d)
		}
		var sum float64
		for _, v := range got {
			sum += float64(v)
		}
		if math.Abs(sum-1) > 1e-5 {
			t.Errorf("n=%d: softmax sums to %v, want 1", n, sum)
		}
		e := append([]float32(nil), s...)
		m := slices.Max(s)
		k, _ := expSumSIMD(e, m, scale)
		for i := range k {
			if w := expf32(float32(float32(s[i]-m) * scale)); e[i] != w {
				t.Fatalf("n=%d: SIMD exp lane %d = %v, want expf32's %v", n, i, e[i], w)
			}
		}
	}
}

func BenchmarkSoftmax(b *testing.B) {
	s := make([]float32, 160)
	for _, f := range []struct {
		name string
		f    Floats
	}{{"go", Floats{}}, {"simd", simdF}} {
		b.Run(f.name, func(b *testing.B) {
			for b.Loop() {
				for i := range s {
					s[i] = float32(i % 17)
				}
				f.f.Softmax(s, 0.088)
			}
		})
	}
}

// TestNarrow checks the F16C conversion against half.ToFloat16 bit for bit:
// normal, subnormal, overflowing, infinite, NaN and signed-zero inputs.
func TestNarrow(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	src := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 65504, 65520, 1e9, -1e9, 6e-8, 3e-8, 1e-40,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 0.333333, 2049, 2051}
	for range 4000 {
		src = append(src, float32(r.NormFloat64()*math.Pow(2, float64(r.IntN(40)-25))))
	}
	for range 3 { // a tail after the SIMD prefix
		src = append(src, float32(r.NormFloat64()))
	}
	got := make([]uint16, len(src))
	simdF.Narrow(got, src)
	for i, v := range src {
		if want := half.ToFloat16(v); got[i] != want {
			t.Fatalf("Narrow(%g) = %#04x, want %#04x", v, got[i], want)
		}
	}
}

// TestReLU2Mul checks the SIMD activation against the Go loop bit for bit,
// and the Go loop against its definition.
func TestReLU2Mul(t *testing.T) {
	gate := []float32{-2, float32(math.Copysign(0, -1)), 0, 0.5, 3, float32(math.Inf(-1))}
	up := []float32{1, 1, 1, 2, -1, 1}
	want := []float32{0, 0, 0, 0.5, -9, 0}
	for _, f := range []Floats{{}, simdF} {
		g := append([]float32(nil), gate...)
		f.ReLU2Mul(g, up)
		for i := range want {
			if g[i] != want[i] {
				t.Errorf("SIMD %t: element %d: got %g, want %g", f.SIMD(), i, g[i], want[i])
			}
		}
	}
	r := rand.New(rand.NewPCG(9, 10))
	for _, n := range []int{1, 8, 13, 6912} {
		g, u := make([]float32, n), make([]float32, n)
		for i := range g {
			g[i], u[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
		}
		a, b := append([]float32(nil), g...), append([]float32(nil), g...)
		Floats{}.ReLU2Mul(a, u)
		simdF.ReLU2Mul(b, u)
		if i, ok := firstDiff(b, a); !ok {
			t.Fatalf("n=%d: SIMD element %d = %g, Go %g", n, i, b[i], a[i])
		}
	}
}

// TestRMSNorm checks the SIMD RMSNorm against the Go one (their sums of
// squares differ in order, so to rounding) over rows with tails.
func TestRMSNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{1, 8, 13, 2560, 6913} {
		x, w := make([]float32, 3*n), make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64() * 3)
		}
		for i := range w {
			w[i] = float32(1 + r.NormFloat64()*0.2)
		}
		a, b := make([]float32, len(x)), make([]float32, len(x))
		Floats{}.RMSNorm(a, x, w, 1e-5)
		simdF.RMSNorm(b, x, w, 1e-5)
		for i := range a {
			if d := math.Abs(float64(a[i] - b[i])); d > 1e-5*math.Abs(float64(a[i]))+1e-6 {
				t.Fatalf("n=%d element %d: SIMD %g, Go %g", n, i, b[i], a[i])
			}
		}
	}
}
