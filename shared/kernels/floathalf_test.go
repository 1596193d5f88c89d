package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/half"
)

// TestHalfRowsMatchWiden checks that attention over an fp16 cache read in
// place gives the bits of widening the cache first (the path without F16C),
// for head sizes, row counts and strides around the kernels' blocks.
func TestHalfRowsMatchWiden(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, hd := range []int{8, 16, 64, 72, 128, 136} {
		for _, n := range []int{0, 1, 3, 4, 5, 9, 130} {
			stride := hd*3 + 8
			q, p := make([]float32, hd), make([]float32, n)
			for i := range q {
				q[i] = float32(r.NormFloat64())
			}
			for i := range p {
				p[i] = r.Float32()
			}
			k16, v16 := make([]uint16, n*stride), make([]uint16, n*stride)
			for i := range k16 {
				k16[i] = half.ToFloat16(float32(r.NormFloat64()))
				v16[i] = half.ToFloat16(float32(r.NormFloat64()))
			}
			kw, vw := make([]float32, len(k16)), make([]float32, len(v16))
			simdF.Widen(kw, k16)
			simdF.Widen(vw, v16)

			got, want := make([]float32, n), make([]float32, n)
			simdF.DotRows(want, q, kw, stride)
			gotA, wantA := make([]float32, hd), make([]float32, hd)
			simdF.AccumRows(wantA, p, vw, stride)
			if !simdF.HalfRows(hd) {
				continue // attention widens on this CPU; nothing else to compare
			}
			simdF.DotRowsHalf(got, q, k16, stride)
			simdF.AccumRowsHalf(gotA, p, v16, stride)
			for j := range got {
				if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
					t.Fatalf("hd=%d n=%d: dot row %d got %v, want %v", hd, n, j, got[j], want[j])
				}
			}
			for i := range gotA {
				if math.Float32bits(gotA[i]) != math.Float32bits(wantA[i]) {
					t.Fatalf("hd=%d n=%d: accum[%d] got %v, want %v", hd, n, i, gotA[i], wantA[i])
				}
			}
		}
	}
}

// TestHalfRows4 checks the grouped-query kernels against the one-head
// ones: the accumulation bit for bit, the dot products bit for bit on rows
// in four-row blocks and to rounding on the tail.
func TestHalfRows4(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, hd := range []int{16, 64, 128, 144} {
		if !simdF.HalfRows4(hd) {
			t.Skip("no fp16 rows on this CPU")
		}
		for _, n := range []int{0, 1, 3, 4, 7, 130} {
			stride := hd*5 + 16
			q, p := make([]float32, 4*hd), make([]float32, 4*n)
			for i := range q {
				q[i] = float32(r.NormFloat64())
			}
			for i := range p {
				p[i] = r.Float32()
			}
			k16, v16 := make([]uint16, n*stride+hd), make([]uint16, n*stride+hd)
			for i := range k16 {
				k16[i] = half.ToFloat16(float32(r.NormFloat64()))
				v16[i] = half.ToFloat16(float32(r.NormFloat64()))
			}
			got, gotA := make([]float32, 4*n), make([]float32, 4*hd)
			for i := range gotA {
				gotA[i] = 99 // overwritten, not added to
			}
			simdF.DotRowsHalf4(got, q, k16, stride)
			simdF.AccumRowsHalf4(gotA, p, v16, stride)
			for h := range 4 {
				want, wantA := make([]float32, n), make([]float32, hd)
				simdF.DotRowsHalf(want, q[h*hd:(h+1)*hd], k16, stride)
				simdF.AccumRowsHalf(wantA, p[h*n:(h+1)*n], v16, stride)
				for j := range want {
					g := got[h*n+j]
					if j < n&^3 && math.Float32bits(g) != math.Float32bits(want[j]) ||
						math.Abs(float64(g-want[j])) > 1e-5*(1+math.Abs(float64(want[j]))) {
						t.Fatalf("hd=%d n=%d head %d: dot row %d got %v, want %v", hd, n, h, j, g, want[j])
					}
				}
				for i := range wantA {
					if g := gotA[h*hd+i]; math.Float32bits(g) != math.Float32bits(wantA[i]) {
						t.Fatalf("hd=%d n=%d head %d: accum[%d] got %v, want %v", hd, n, h, i, g, wantA[i])
					}
				}
			}
		}
	}
}
