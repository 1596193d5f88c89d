package kernels

import (
	"fmt"
	"math"

	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// Activations holds N tokens of K features quantized to int8 per token
// (absmax), as BitNet's activation quantizer defines them:
// s = 127 / max(|x|) with max clamped to >= 1e-5, q = round_half_even(x*s)
// clamped to [-128, 127].
type Activations struct {
	N, K int
	// Stride is the distance between tokens in Q: K padded to ternary.BlockSize.
	// Padding is zero so it adds nothing to any product.
	Stride int
	Q      []int8
	// Scale[t] is s for token t: x ~= q / s.
	Scale []float32
	// Sum[t] is the sum of Q over token t (for the code trick
	// dot(w+1, q) - sum(q) = dot(w, q)).
	Sum []int32
}

// NewActivations allocates activations for n tokens of k features.
func NewActivations(n, k int) *Activations {
	a := &Activations{}
	a.Reset(n, k)
	return a
}

// Reset resizes a for n tokens of k features, reusing its buffers.
// Negative sizes count as 0 (the kernels then reject k = 0 with ErrShape).
func (a *Activations) Reset(n, k int) {
	n, k = max(n, 0), max(k, 0)
	a.N, a.K = n, k
	a.Stride = ternary.PaddedCols(k)
	a.Q = grow(a.Q, n*a.Stride)
	a.Scale = grow(a.Scale, n)
	a.Sum = grow(a.Sum, n)
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// Quantize quantizes x (N*K floats, token-major) into a.
func (a *Activations) Quantize(x []float32) error {
	if len(x) != a.N*a.K {
		return fmt.Errorf("%w: activations got %d floats, want N*K = %d*%d", ErrShape, len(x), a.N, a.K)
	}
	for t := 0; t < a.N; t++ {
		a.Scale[t], a.Sum[t] = QuantizeRow(a.Q[t*a.Stride:t*a.Stride+a.K], x[t*a.K:(t+1)*a.K])
	}
	return nil
}

// QuantizeRow quantizes one token x into q (same length) and returns its scale
// and the sum of q. If q is shorter, only x[:len(q)] is quantized.
// The result is bit-identical to quantizeRowGeneric on every path; it uses
// the AVX-512 loops where the CPU has them (Engine.Quantize follows the plan).
func QuantizeRow(q []int8, x []float32) (scale float32, sum int32) {
	return quantizeRow(q, x, hasAVX512Quant)
}

// quantizeRow is QuantizeRow with the AVX-512 loops when simd is set.
func quantizeRow(q []int8, x []float32, simd bool) (scale float32, sum int32) {
	x = x[:min(len(x), len(q))]
	mb := absMaxBits(x, simd)
	if mb >= infBits { // Inf or NaN: keep the float64 semantics exactly
		return quantizeRowGeneric(q, x)
	}
	m := max(math.Float32frombits(mb), 1e-5)
	scale = 127 / m
	return scale, quantizeScaled(q, x, scale, simd)
}

// quantizeRowGeneric is the definition QuantizeRow must match bit for bit:
// float64 round-half-to-even and a float clamp.
func quantizeRowGeneric(q []int8, x []float32) (scale float32, sum int32) {
	x = x[:min(len(x), len(q))]
	var m float32
	for _, v := range x {
		m = max(m, abs32(v))
	}
	m = max(m, 1e-5)
	scale = 127 / m
	for i, v := range x {
		r := math.RoundToEven(float64(v * scale))
		r = min(max(r, -128), 127)
		q[i] = int8(r)
		sum += int32(q[i])
	}
	return scale, sum
}

func abs32(v float32) float32 {
	return math.Float32frombits(math.Float32bits(v) &^ (1 << 31))
}
