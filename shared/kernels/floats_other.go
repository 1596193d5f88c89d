//go:build !amd64

package kernels

// No float SIMD off amd64: FloatsFor returns the Go loops.
const (
	hasFloatFMA = false
	hasF16C     = false
)

func dotSIMD(a, b []float32) float32                     { return DotGeneric(a, b) }
func axpySIMD(y []float32, a float32, x []float32)       { axpyGeneric(y, a, x) }
func dotRowsSIMD(out, q, k []float32, stride int)        { Floats{}.DotRows(out, q, k, stride) }
func accumRowsSIMD(out, p, v []float32, stride int)      { Floats{}.AccumRows(out, p, v, stride) }
func widenSIMD(dst []float32, src []uint16) int          { return 0 }
func narrowSIMD(dst []uint16, src []float32) int         { return 0 }
func normScaleSIMD(dst, x, w []float32, inv float32) int { return 0 }
func relu2MulSIMD(g, u []float32) int                    { return 0 }
func maxSIMD(s []float32) (int, float32)                 { return 0, 0 }
func scaleSIMD(s []float32, f float32) int               { return 0 }
func expSumSIMD(s []float32, m, scale float32) (int, float32) {
	return 0, 0
}
func dotRowsHalfSIMD(out, q []float32, k []uint16, stride int) {
	panic("kernels: no fp16 rows off amd64")
}
func dotRowsHalf4SIMD(out, q []float32, k []uint16, n, hd, stride int) {
	panic("kernels: no fp16 rows off amd64")
}
func accumRowsHalf4SIMD(out, p []float32, v []uint16, n, hd, stride int) {
	panic("kernels: no fp16 rows off amd64")
}
func accumRowsHalfSIMD(out, p []float32, v []uint16, stride int) {
	panic("kernels: no fp16 rows off amd64")
}
