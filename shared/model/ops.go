package model

import "math"

// rmsNorm writes w * x / sqrt(mean(x^2) + eps) for each of the len(x)/len(w)
// rows of x into dst, in float32 like transformers' BitNetRMSNorm (the sum of
// squares in float32 lanes, like torch's vectorised mean).
func rmsNorm(dst, x, w []float32, eps float32) {
	n := len(w)
	for r := 0; r+n <= len(x); r += n {
		xr, dr := x[r:r+n], dst[r:r+n]
		variance := dot(xr, xr) / float32(n)
		inv := float32(1 / math.Sqrt(float64(variance+eps)))
		for i, v := range xr {
			dr[i] = w[i] * float32(v*inv)
		}
	}
}

// dotGeneric returns the float32 dot product of a and b (len(b) >= len(a)).
func dotGeneric(a, b []float32) float32 {
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

func dotRowsGeneric(out, q, k []float32, stride int) {
	for j := range out {
		out[j] = dotGeneric(q, k[j*stride:])
	}
}

func accumRowsGeneric(out, p, v []float32, stride int) {
	clear(out)
	for j, w := range p {
		axpyGeneric(out, w, v[j*stride:])
	}
}

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
