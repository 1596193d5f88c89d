package kernels

import "github.com/bitnet-mesh/bitnet-mesh/shared/ternary"

// maxTritCols bounds the rows of the SIMD 1.6-bit kernels: the
// byte-addition decode of amd64 (t5s*) is exact while 256 times an int32
// lane's trit sum fits in int32, that is for K up to 2^18 on ymm
// (internal/asmgen's tritSumKernel). Wider rows take the generic kernel.
const maxTritCols = 1 << 18

// matMulTritsGeneric computes rows [r0, r1) of y for one token from the
// 1.6-bit layout (ternary.Matrix.Trits): the same exact int32 dots as
// matMulGeneric, so the same bits.
func matMulTritsGeneric(y []float32, w *ternary.Matrix, a *Activations, r0, r1 int) {
	ts := ternary.TritStride(w.Stride)
	groups, _, planes := ternary.TritLayout(w.Stride)
	q := a.Q[:a.Stride]
	f := w.Scale / a.Scale[0]
	pow := [5]uint16{1, 3, 9, 27, 81}
	for r := r0; r < r1; r++ {
		row := w.Trits[r*ts : (r+1)*ts]
		var s int32
		for g := range groups {
			np := 5
			if g == groups-1 && planes > 0 {
				np = planes
			}
			for j, b := range row[64*g : 64*g+64] {
				for n := range np {
					c := int32(uint16(byte(uint16(b)*pow[n])) * 3 >> 8)
					s += c * int32(q[ternary.TritGroup*g+64*n+j])
				}
			}
		}
		y[r] = float32(s-a.Sum[0]) * f
	}
}
