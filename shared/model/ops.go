package model

import "math"

// softmax replaces s by its softmax, subtracting the maximum first.
func softmax(s []float32) {
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

// relu2Mul writes relu(gate)^2 * up into gate.
func relu2Mul(gate, up []float32) {
	up = up[:len(gate)]
	for i, g := range gate {
		// Branch-free: the sign of g is random, a branch mispredicts half the time.
		g = math.Float32frombits(math.Float32bits(g) & ^uint32(int32(math.Float32bits(g))>>31))
		gate[i] = float32(g*g) * up[i]
	}
}

// addTo adds x to y.
func addTo(y, x []float32) {
	x = x[:len(y)]
	for i, v := range x {
		y[i] += v
	}
}

// grow returns s resized to n, reusing its storage when it is large enough.
// The contents are unspecified.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
