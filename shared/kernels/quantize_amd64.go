package kernels

//go:noescape
func absMaxBits512(x *float32, n int) uint32

//go:noescape
func quantize512(q *int8, x *float32, n int, scale float32) int32

// hasAVX512Quant reports the AVX-512 F+BW quantisation loops
// (quantize_amd64.s); read-only after package initialisation.
var hasAVX512Quant = cpu.avx512f && cpu.avx512bw

// absMaxBits returns the largest math.Float32bits(|v|) over x, with the
// AVX-512 loop when simd is set (the caller checks hasAVX512Quant).
func absMaxBits(x []float32, simd bool) uint32 {
	n := 0
	var m uint32
	if simd {
		if n = len(x) &^ 15; n > 0 {
			m = absMaxBits512(&x[0], n)
		}
	}
	return max(m, absMaxBitsGo(x[n:]))
}

// quantizeScaled writes round_half_even(x*scale) clamped to [-128, 127] into
// q (len(q) >= len(x)) and returns the sum; |x*scale| must be < 2^22.
func quantizeScaled(q []int8, x []float32, scale float32, simd bool) int32 {
	n := 0
	var sum int32
	if simd {
		if n = len(x) &^ 15; n > 0 {
			q = q[:len(x)]
			sum = quantize512(&q[0], &x[0], n, scale)
		}
	}
	return sum + quantizeScaledGo(q[n:], x[n:], scale)
}
