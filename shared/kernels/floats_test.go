package kernels

import (
	"math"
	"math/rand/v2"
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
