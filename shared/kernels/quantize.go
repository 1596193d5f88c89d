package kernels

import "math"

// Activation quantisation without float64 rounding. For finite rows the max
// of |x| equals the max of the sign-cleared bit patterns taken as integers,
// and every scaled value has |x*scale| <= 127.00002, so adding 1.5*2^23
// rounds it half to even into the low mantissa bits (the "magic number"
// trick): the same integers as math.RoundToEven, without the conversions.

const (
	infBits   = 0x7f800000 // |x| bits at or above this are Inf or NaN
	magic     = 12582912   // 1.5 * 2^23
	magicBits = 0x4b400000 // math.Float32bits(magic)
)

// absMaxBitsGo returns the largest math.Float32bits(|v|) over x.
func absMaxBitsGo(x []float32) uint32 {
	var m0, m1 uint32
	i := 0
	for ; i+2 <= len(x); i += 2 {
		m0 = max(m0, math.Float32bits(x[i])&^(1<<31))
		m1 = max(m1, math.Float32bits(x[i+1])&^(1<<31))
	}
	for ; i < len(x); i++ {
		m0 = max(m0, math.Float32bits(x[i])&^(1<<31))
	}
	return max(m0, m1)
}

// quantizeScaledGo writes round_half_even(x*scale) clamped to [-128, 127]
// into q (len(q) >= len(x)) and returns the sum; |x*scale| must be < 2^22.
func quantizeScaledGo(q []int8, x []float32, scale float32) int32 {
	q = q[:len(x)]
	var sum int32
	for i, v := range x {
		// The conversion stops a fused multiply-add (one rounding, not two).
		t := float32(v*scale) + magic
		k := int32(math.Float32bits(t)) - magicBits
		k = min(max(k, -128), 127)
		q[i] = int8(k)
		sum += k
	}
	return sum
}
