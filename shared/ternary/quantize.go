package ternary

import (
	"fmt"
	"math"
)

// MinAbsMean is the clamp of the absmean scale (transformers' clamp_(min=1e-5)).
const MinAbsMean = 1e-5

// Quantize ternarises dense row-major float weights w (len rows*cols) with
// BitNet b1.58's absmean rule exactly as transformers' WeightQuant (and
// llama.cpp's converter) computes it in fp32:
//
//	s   = max(mean(|W|), 1e-5)
//	inv = 1 / s                            (fp32)
//	T   = clamp(round_half_even(W * inv), -1, 1)
//	Scale = 1 / inv                        (fp32: the magnitude of T / inv)
//
// The mean is accumulated in float64 and rounded once to fp32, so it can
// differ from PyTorch's blocked fp32 sum in the last bit. WeightQuant then
// casts T/inv back to the master dtype (bf16 for 2B4T): an engine that must
// match it bit for bit rounds Scale to that dtype. Non-finite weights are an
// error.
func Quantize(rows, cols int, w []float32) (*Matrix, error) {
	if rows <= 0 || cols <= 0 {
		return nil, fmt.Errorf("%w: rows=%d cols=%d must be positive", ErrShape, rows, cols)
	}
	if rows > math.MaxInt/cols || len(w) != rows*cols {
		return nil, fmt.Errorf("%w: got %d weights, want rows*cols = %d*%d", ErrShape, len(w), rows, cols)
	}
	sum, ok := absSum(w)
	if !ok {
		for i, v := range w {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("ternary: weight %v at row %d col %d is not finite", v, i/cols, i%cols)
			}
		}
	}
	s := float32(sum / float64(len(w)))
	if s < MinAbsMean {
		s = MinAbsMean
	}
	inv := 1 / s
	m, err := alloc(rows, cols, 1/inv)
	if err != nil {
		return nil, err
	}
	for r := 0; r < rows; r++ {
		packRow(m.Codes[r*m.Stride:(r+1)*m.Stride], w[r*cols:(r+1)*cols], inv)
	}
	return m, nil
}

// absSum returns sum(|w|) in float64 (four independent chains for speed) and
// whether every weight is finite.
func absSum(w []float32) (float64, bool) {
	var s0, s1, s2, s3 float64
	var bad uint32
	for len(w) >= 4 {
		a0, a1 := math.Float32bits(w[0])&0x7fffffff, math.Float32bits(w[1])&0x7fffffff
		a2, a3 := math.Float32bits(w[2])&0x7fffffff, math.Float32bits(w[3])&0x7fffffff
		bad |= (0x7f7fffff - a0) | (0x7f7fffff - a1) | (0x7f7fffff - a2) | (0x7f7fffff - a3)
		s0 += float64(math.Float32frombits(a0))
		s1 += float64(math.Float32frombits(a1))
		s2 += float64(math.Float32frombits(a2))
		s3 += float64(math.Float32frombits(a3))
		w = w[4:]
	}
	for _, v := range w {
		a := math.Float32bits(v) & 0x7fffffff
		bad |= 0x7f7fffff - a
		s0 += float64(math.Float32frombits(a))
	}
	return (s0 + s1) + (s2 + s3), bad>>31 == 0
}

// code returns w+1 for T = clamp(round_half_even(p), -1, 1): |p| <= 0.5
// rounds to 0 and everything beyond clamps to +-1. It works on the bits
// (branch-free: random weights defeat branch prediction); p is finite.
func code(p float32) byte {
	b := math.Float32bits(p)
	nz := (0x3f000000 - b&0x7fffffff) >> 31 // 1 when |p| > 0.5
	return byte(1 + nz - (nz&(b>>31))<<1)
}

// packRow writes the codes of one row of floats scaled by inv into dst
// (Stride bytes, padding included).
func packRow(dst []byte, w []float32, inv float32) {
	cols := len(w)
	full := cols / GroupSize
	for g := 0; g < full; g++ {
		x := w[g*GroupSize : (g+1)*GroupSize]
		d := dst[g*GroupBytes : (g+1)*GroupBytes]
		for k := range d {
			d[k] = code(x[k]*inv) | code(x[32+k]*inv)<<2 | code(x[64+k]*inv)<<4 | code(x[96+k]*inv)<<6
		}
	}
	tail := dst[full*GroupBytes:]
	fill55(tail)
	for c := full * GroupSize; c < cols; c++ {
		k := c - full*GroupSize
		n, b := k/GroupBytes, k%GroupBytes
		tail[b] = tail[b]&^(3<<(2*n)) | code(w[c]*inv)<<(2*n)
	}
}

// Stats reports the share of zero weights in m and the relative error
// ||W - T*Scale|| / ||W|| of m against the dense float weights w (len
// Rows*Cols), both in float64. relErr is 0 when W and T*Scale are both zero.
func Stats(w []float32, m *Matrix) (zeros, relErr float64, err error) {
	if err := m.checkShape(); err != nil {
		return 0, 0, err
	}
	if m.Rows > math.MaxInt/m.Cols || len(w) != m.Rows*m.Cols {
		return 0, 0, fmt.Errorf("%w: got %d weights, want rows*cols = %d*%d", ErrShape, len(w), m.Rows, m.Cols)
	}
	s := float64(m.Scale)
	var nz int
	var num, den float64
	row := make([]int8, 0, m.Cols)
	for r := 0; r < m.Rows; r++ {
		row = m.Row(row[:0], r)
		x := w[r*m.Cols : (r+1)*m.Cols]
		for c, t := range row {
			if t == 0 {
				nz++
			}
			v := float64(x[c])
			e := v - float64(t)*s
			num += e * e
			den += v * v
		}
	}
	zeros = float64(nz) / float64(len(w))
	switch {
	case den > 0:
		relErr = math.Sqrt(num / den)
	case num > 0:
		relErr = math.Inf(1)
	}
	return zeros, relErr, nil
}
