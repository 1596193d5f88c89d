package model

import "math"

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

// siluMul writes silu(gate) * up into gate, silu(g) = g / (1 + exp(-g)) in
// float32 like torch.nn.functional.silu.
func siluMul(gate, up []float32) {
	up = up[:len(gate)]
	for i, g := range gate {
		s := float32(float64(g) / (1 + math.Exp(-float64(g))))
		gate[i] = s * up[i]
	}
}

// geluTanhMul writes gelu_tanh(gate) * up into gate with
// gelu_tanh(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))), torch's
// gelu(approximate="tanh") (Gemma's gelu_pytorch_tanh).
func geluTanhMul(gate, up []float32) {
	up = up[:len(gate)]
	const k = 0.7978845608028654 // sqrt(2/pi)
	for i, g := range gate {
		x := float64(g)
		s := float32(0.5 * x * (1 + math.Tanh(k*(x+0.044715*x*x*x))))
		gate[i] = s * up[i]
	}
}

// scaleTo multiplies x by a.
func scaleTo(x []float32, a float32) {
	for i := range x {
		x[i] *= a
	}
}
