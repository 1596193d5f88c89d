package kernels

import (
	"math"

	"github.com/bitnet-mesh/bitnet-mesh/shared/half"
)

// Floats runs the float32 loops of the model (RMSNorm, attention rows, the
// float32 head, fp16 KV-cache widening) with AVX2+FMA and F16C where the
// kernel path allows them, else in Go. It is decided once (FloatsFor,
// Engine.Floats), so a forced generic path runs no SIMD anywhere. The SIMD
// loops sum in a different order than the Go ones; results agree to
// rounding, not bit for bit (the ternary kernels, by contrast, are exact).
type Floats struct{ fma, f16c bool }

// FloatsFor returns the float loops of path p: none for Generic, else what
// this CPU has.
func FloatsFor(p Path) Floats {
	if p == Generic || p == "" && Best() == Generic {
		return Floats{}
	}
	return Floats{fma: hasFloatFMA, f16c: hasFloatFMA && hasF16C}
}

// SIMD reports whether the float loops use AVX2+FMA (the trainer's float32
// GEMM tiles, Dot4x3 and friends, need it).
func (f Floats) SIMD() bool { return f.fma }

// Dot returns the float32 dot product of a and b (len(b) >= len(a)).
func (f Floats) Dot(a, b []float32) float32 {
	if f.fma && len(a) > 0 {
		return dotSIMD(a, b[:len(a)])
	}
	return DotGeneric(a, b)
}

// Axpy adds a*x to y (len(x) >= len(y)).
func (f Floats) Axpy(y []float32, a float32, x []float32) {
	if f.fma && len(y) > 0 {
		axpySIMD(y, a, x[:len(y)])
		return
	}
	axpyGeneric(y, a, x)
}

// Softmax replaces s with softmax(s*scale), scale > 0 (attention scores
// and their 1/sqrt(head_dim)). The Go loop scales, then takes float64
// exponentials; the SIMD loop takes exp((s-max)*scale) in float32
// (expf32, relative error under 2e-7, eight lanes at a time): ten times
// faster, which a decode step at a few hundred positions feels (about
// half of its attention time went to math.Exp).
func (f Floats) Softmax(s []float32, scale float32) {
	if len(s) == 0 {
		return
	}
	if !f.fma {
		for j := range s {
			s[j] *= scale
		}
		softmaxGeneric(s)
		return
	}
	n, m := maxSIMD(s)
	if n == 0 {
		m = s[0]
	}
	for _, v := range s[n:] {
		m = max(m, v)
	}
	n, sum := expSumSIMD(s, m, scale)
	for j := n; j < len(s); j++ {
		s[j] = expf32(float32(float32(s[j]-m) * scale))
		sum += s[j]
	}
	inv := 1 / sum
	for j := scaleSIMD(s, inv); j < len(s); j++ {
		s[j] *= inv
	}
}

// softmaxGeneric replaces s with softmax(s), exponentials in float64.
func softmaxGeneric(s []float32) {
	m := float32(math.Inf(-1))
	for _, v := range s {
		m = max(m, v)
	}
	var sum float32
	for i, v := range s {
		e := float32(math.Exp(float64(v - m)))
		s[i] = e
		sum += e
	}
	inv := 1 / sum
	for i := range s {
		s[i] *= inv
	}
}

// expf32 returns e^x in float32 for x <= 88 (smaller than -87.33654 counts
// as -87.33654, whose e^x is the smallest normal float32): Cephes' expf,
// every operation rounded to float32 and none fused, so that expSumAVX2's
// lanes equal it bit for bit.
func expf32(x float32) float32 {
	const (
		log2e = float32(1.44269504088896341)
		c1    = float32(0.693359375)
		c2    = float32(-2.12194440e-4)
	)
	x = max(x, float32(math.Float32frombits(0xc2aeac50)))
	n := float32(math.RoundToEven(float64(float32(x * log2e))))
	r := float32(x - float32(n*c1))
	r = float32(r - float32(n*c2))
	r2 := float32(r * r)
	p := float32(float32(1.9875691500e-4) * r)
	p = float32(float32(p+1.3981999507e-3) * r)
	p = float32(float32(p+8.3334519073e-3) * r)
	p = float32(float32(p+4.1665795894e-2) * r)
	p = float32(float32(p+1.6666665459e-1) * r)
	p = float32(p + 5.0000001201e-1)
	p = float32(float32(p*r2) + r)
	p = float32(p + 1)
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}

// DotRows sets out[j] = dot(q, k[j*stride:][:len(q)]) for j < len(out).
func (f Floats) DotRows(out, q, k []float32, stride int) {
	n, hd := len(out), len(q)
	if n == 0 {
		return
	}
	k = k[:(n-1)*stride+hd] // bounds for the assembly
	if f.fma && hd%8 == 0 && hd > 0 {
		dotRowsSIMD(out, q, k, stride)
		return
	}
	for j := range out {
		out[j] = DotGeneric(q, k[j*stride:])
	}
}

// AccumRows sets out = sum over j < len(p) of p[j] * v[j*stride:][:len(out)].
func (f Floats) AccumRows(out, p, v []float32, stride int) {
	n, hd := len(p), len(out)
	if n == 0 {
		clear(out)
		return
	}
	v = v[:(n-1)*stride+hd] // bounds for the assembly
	if f.fma && hd%8 == 0 && hd > 0 {
		accumRowsSIMD(out, p, v, stride)
		return
	}
	clear(out)
	for j, w := range p {
		axpyGeneric(out, w, v[j*stride:])
	}
}

// Widen converts IEEE half values to float32 (len(dst) >= len(src)).
func (f Floats) Widen(dst []float32, src []uint16) {
	n := 0
	if f.f16c {
		n = widenSIMD(dst, src)
	}
	for i, h := range src[n:] {
		dst[n+i] = half.FromFloat16(h)
	}
}

// HalfRows4 reports whether DotRowsHalf4 and AccumRowsHalf4 run for head
// size hd (else attention takes the heads of a group one at a time).
func (f Floats) HalfRows4(hd int) bool { return f.HalfRows(hd) && hd%16 == 0 }

// DotRowsHalf4 is DotRowsHalf for the four query heads that share one KV
// head (grouped-query attention): out[h*n+j] = dot(q[h*hd:][:hd],
// k[j*stride:][:hd]) for h < 4 and j < n = len(out)/4, hd = len(q)/4.
// Each row of k is widened once for the four heads instead of once per
// head, which halves the work of a decode step's attention. Results
// agree with DotRowsHalf's to rounding (its last n%4 rows reduce their
// sums in another order). HalfRows4(hd) must hold.
func (f Floats) DotRowsHalf4(out, q []float32, k []uint16, stride int) {
	n, hd := len(out)/4, len(q)/4
	if n == 0 {
		return
	}
	dotRowsHalf4SIMD(out[:4*n], q[:4*hd], k[:(n-1)*stride+hd], n, hd, stride)
}

// AccumRowsHalf4 is AccumRowsHalf for the four query heads that share one
// KV head: out[h*hd:][:hd] = sum over j < n of p[h*n+j] * v[j*stride:][:hd]
// for h < 4, n = len(p)/4, hd = len(out)/4; the bits of AccumRowsHalf's.
// HalfRows4(hd) must hold.
func (f Floats) AccumRowsHalf4(out, p []float32, v []uint16, stride int) {
	n, hd := len(p)/4, len(out)/4
	if n == 0 {
		clear(out)
		return
	}
	accumRowsHalf4SIMD(out[:4*hd], p[:4*n], v[:(n-1)*stride+hd], n, hd, stride)
}

// Narrow converts src to IEEE half into dst (len(dst) >= len(src)),
// rounding to nearest even as half.ToFloat16 does (F16C where the path has
// it: the fp16 KV cache's stores).
func (f Floats) Narrow(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	n := 0
	if f.f16c {
		n = narrowSIMD(dst, src)
	}
	for i, v := range src[n:] {
		dst[n+i] = half.ToFloat16(v)
	}
}

// ReLU2Mul sets g[i] = relu(g[i])^2 * u[i] (len(u) >= len(g)): the FFN
// activation of BitNet b1.58. Every path rounds alike (the SIMD loop
// differs only on NaN gates, which it treats as 0).
func (f Floats) ReLU2Mul(g, u []float32) {
	u = u[:len(g)]
	n := 0
	if f.fma {
		n = relu2MulSIMD(g, u)
	}
	for i := n; i < len(g); i++ {
		v := g[i]
		// Branch-free: the sign of v is random, a branch mispredicts half the time.
		v = math.Float32frombits(math.Float32bits(v) & ^uint32(int32(math.Float32bits(v))>>31))
		g[i] = float32(v*v) * u[i]
	}
}

// HalfRows reports whether DotRowsHalf and AccumRowsHalf read an fp16 KV
// cache in place for head size hd; elsewhere attention widens it first.
func (f Floats) HalfRows(hd int) bool { return f.fma && f.f16c && hd > 0 && hd%8 == 0 }

// DotRowsHalf is DotRows over half-precision k with the bits of widening k
// first; HalfRows(len(q)) must hold.
func (f Floats) DotRowsHalf(out, q []float32, k []uint16, stride int) {
	n, hd := len(out), len(q)
	if n == 0 {
		return
	}
	dotRowsHalfSIMD(out, q, k[:(n-1)*stride+hd], stride)
}

// AccumRowsHalf is AccumRows over half-precision v with the bits of
// widening v first; HalfRows(len(out)) must hold.
func (f Floats) AccumRowsHalf(out, p []float32, v []uint16, stride int) {
	n, hd := len(p), len(out)
	if n == 0 {
		clear(out)
		return
	}
	accumRowsHalfSIMD(out, p, v[:(n-1)*stride+hd], stride)
}

// RMSNorm writes w * x / sqrt(mean(x^2) + eps) for each of the len(x)/len(w)
// rows of x into dst, in float32 like transformers' BitNetRMSNorm (the sum
// of squares in float32 lanes, like torch's vectorised mean).
func (f Floats) RMSNorm(dst, x, w []float32, eps float32) {
	n := len(w)
	for r := 0; r+n <= len(x); r += n {
		xr, dr := x[r:r+n], dst[r:r+n]
		variance := f.Dot(xr, xr) / float32(n)
		inv := float32(1 / math.Sqrt(float64(variance+eps)))
		i := 0
		if f.fma {
			i = normScaleSIMD(dr, xr, w, inv)
		}
		for ; i < n; i++ {
			dr[i] = w[i] * float32(xr[i]*inv)
		}
	}
}

// DotGeneric returns the float32 dot product of a and b (len(b) >= len(a))
// in Go, four lanes summed pairwise.
func DotGeneric(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpyGeneric adds a*x to y (len(x) >= len(y)).
func axpyGeneric(y []float32, a float32, x []float32) {
	x = x[:len(y)]
	for i, v := range x {
		y[i] += a * v
	}
}
