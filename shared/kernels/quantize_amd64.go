package kernels

import "github.com/klauspost/cpuid/v2"

// hasAVX512Quant reports the AVX-512 F+BW quantisation loops
// (quantize_amd64.s); read-only after package initialisation.
var hasAVX512Quant = cpuid.CPU.Supports(cpuid.AVX512F, cpuid.AVX512BW)

//go:noescape
func absMaxBits512(x *float32, n int) uint32

//go:noescape
func quantize512(q *int8, x *float32, n int, scale float32) int32

// absMaxBits returns the largest math.Float32bits(|v|) over x.
func absMaxBits(x []float32) uint32 {
	n := 0
	var m uint32
	if hasAVX512Quant {
		if n = len(x) &^ 15; n > 0 {
			m = absMaxBits512(&x[0], n)
		}
	}
	return max(m, absMaxBitsGo(x[n:]))
}

// quantizeScaled writes round_half_even(x*scale) clamped to [-128, 127] into
// q (len(q) >= len(x)) and returns the sum; |x*scale| must be < 2^22.
func quantizeScaled(q []int8, x []float32, scale float32) int32 {
	n := 0
	var sum int32
	if hasAVX512Quant {
		if n = len(x) &^ 15; n > 0 {
			q = q[:len(x)]
			sum = quantize512(&q[0], &x[0], n, scale)
		}
	}
	return sum + quantizeScaledGo(q[n:], x[n:], scale)
}
