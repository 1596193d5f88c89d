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
