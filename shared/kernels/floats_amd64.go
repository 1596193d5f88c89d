package kernels

// The float loops (floats_amd64.s, hand-written) and the trainer's float32
// GEMM tiles (floatgemm_amd64.s, hand-written); read-only after package
// initialisation.
var (
	hasFloatFMA = cpu.avx2 && cpu.fma
	hasF16C     = cpu.f16c
)

//go:noescape
func f16ToF32F16C(dst *float32, src *uint16, n int)

//go:noescape
func dotAVX2(a, b *float32, n int) float32

//go:noescape
func axpyAVX2(y, x *float32, n int, a float32)

//go:noescape
func dotRowsAVX2(out, q, k *float32, n, hd, stride int)

//go:noescape
func accumRowsAVX2(out, p, v *float32, n, hd, stride int)

//go:noescape
func dotRowsF16(out, q *float32, k *uint16, n, hd, stride int)

//go:noescape
func accumRowsF16(out, p *float32, v *uint16, n, hd, stride int)

//go:noescape
func expSumAVX2(s *float32, n int, m, scale float32) float32

//go:noescape
func maxAVX2(s *float32, n int) float32

//go:noescape
func scaleAVX2(s *float32, n int, f float32)

// maxSIMD returns the largest of the longest prefix of s that is a
// multiple of 8, and its length (0: none).
func maxSIMD(s []float32) (int, float32) {
	n := len(s) &^ 7
	if n == 0 {
		return 0, 0
	}
	return n, maxAVX2(&s[0], n)
}

// scaleSIMD multiplies the longest prefix of s that is a multiple of 8 by
// f and returns its length.
func scaleSIMD(s []float32, f float32) int {
	n := len(s) &^ 7
	if n > 0 {
		scaleAVX2(&s[0], n, f)
	}
	return n
}

//go:noescape
func dotRowsGroupF16(out, q *float32, k *uint16, n, hd, stride, ostride int)

//go:noescape
func accumRowsGroupF16(out, p *float32, v *uint16, n, hd, stride, pstride int)

func dotRowsHalf4SIMD(out, q []float32, k []uint16, n, hd, stride int) {
	dotRowsGroupF16(&out[0], &q[0], &k[0], n, hd, stride, n)
}
func accumRowsHalf4SIMD(out, p []float32, v []uint16, n, hd, stride int) {
	accumRowsGroupF16(&out[0], &p[0], &v[0], n, hd, stride, n)
}

//go:noescape
func f32ToF16F16C(dst *uint16, src *float32, n int)

//go:noescape
func normScaleAVX2(dst, x, w *float32, n int, inv float32)

//go:noescape
func relu2MulAVX2(gate, up *float32, n int)

// narrowSIMD converts the longest prefix of src that is a multiple of 8 to
// half and returns its length.
func narrowSIMD(dst []uint16, src []float32) int {
	n := len(src) &^ 7
	if n > 0 {
		f32ToF16F16C(&dst[0], &src[0], n)
	}
	return n
}

// normScaleSIMD sets dst[i] = w[i]*(x[i]*inv) over the longest prefix of
// x that is a multiple of 8 and returns its length.
func normScaleSIMD(dst, x, w []float32, inv float32) int {
	n := len(x) &^ 7
	if n > 0 {
		normScaleAVX2(&dst[0], &x[0], &w[0], n, inv)
	}
	return n
}

// relu2MulSIMD runs relu2MulAVX2 over the longest prefix of g that is a
// multiple of 8 and returns its length.
func relu2MulSIMD(g, u []float32) int {
	n := len(g) &^ 7
	if n > 0 {
		relu2MulAVX2(&g[0], &u[0], n)
	}
	return n
}

// expSumSIMD runs expSumAVX2 over the longest prefix of s that is a
// multiple of 8 and returns its length and sum.
func expSumSIMD(s []float32, m, scale float32) (int, float32) {
	n := len(s) &^ 7
	if n == 0 {
		return 0, 0
	}
	return n, expSumAVX2(&s[0], n, m, scale)
}

func dotSIMD(a, b []float32) float32               { return dotAVX2(&a[0], &b[0], len(a)) }
func axpySIMD(y []float32, a float32, x []float32) { axpyAVX2(&y[0], &x[0], len(y), a) }
func dotRowsSIMD(out, q, k []float32, stride int) {
	dotRowsAVX2(&out[0], &q[0], &k[0], len(out), len(q), stride)
}
func accumRowsSIMD(out, p, v []float32, stride int) {
	accumRowsAVX2(&out[0], &p[0], &v[0], len(p), len(out), stride)
}
func dotRowsHalfSIMD(out, q []float32, k []uint16, stride int) {
	dotRowsF16(&out[0], &q[0], &k[0], len(out), len(q), stride)
}
func accumRowsHalfSIMD(out, p []float32, v []uint16, stride int) {
	accumRowsF16(&out[0], &p[0], &v[0], len(p), len(out), stride)
}

// widenSIMD converts the longest prefix of src that is a multiple of 8 and
// returns its length.
func widenSIMD(dst []float32, src []uint16) int {
	n := len(src) &^ 7
	if n > 0 {
		f16ToF32F16C(&dst[0], &src[0], n)
	}
	return n
}

// Dot4x3 computes out[r*3+c] = dot(a row r, b row c) over k floats for 4 rows
// of a (lda apart) and 3 of b (ldb apart), k a multiple of 8, with AVX2+FMA:
// the trainer's float32 GEMM tile. Callers check Floats.SIMD and bounds.
//
//go:noescape
func Dot4x3(a *float32, lda int, b *float32, ldb int, k int, out *[12]float32)

// Dot4x1 is Dot4x3 for one row of b.
//
//go:noescape
func Dot4x1(a *float32, lda int, b *float32, k int, out *[4]float32)

// NN4x16 computes out[r*16+c] = sum_p A[r,p] * b[p*ldb+c] for a 4x16 block
// with A[r,p] = a[r*rsa+p*csa] (AVX2+FMA; callers check Floats.SIMD and bounds).
//
//go:noescape
func NN4x16(a *float32, rsa, csa int, b *float32, ldb int, k int, out *[64]float32)
