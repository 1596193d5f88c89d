package kernels

import (
	"errors"
	"fmt"
	"math"

	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// Int8Matrix is a rows x cols matrix quantized to int8 per row (absmax), used
// for the output head where ternary weights would lose too much:
// W[r][c] ~= Data[r*Stride+c] * Scales[r].
type Int8Matrix struct {
	Rows, Cols int
	// Stride is Cols padded like Activations.Stride; padding is zero.
	Stride int
	Data   []int8
	Scales []float32
}

// NewInt8Matrix quantizes rows x cols float32 weights w (row-major) per row:
// Scales[r] = max|w[r]| / 127 (max clamped to >= 1e-5) and
// Data = round_half_even(w / Scales[r]) clamped to [-127, 127].
func NewInt8Matrix(rows, cols int, w []float32) (*Int8Matrix, error) {
	if rows <= 0 || cols <= 0 {
		return nil, fmt.Errorf("%w: int8 matrix %dx%d must have positive dimensions", ErrShape, rows, cols)
	}
	if len(w) != rows*cols {
		return nil, fmt.Errorf("%w: int8 matrix %dx%d got %d floats, want %d", ErrShape, rows, cols, len(w), rows*cols)
	}
	stride := ternary.PaddedCols(cols)
	m := &Int8Matrix{Rows: rows, Cols: cols, Stride: stride, Data: make([]int8, rows*stride), Scales: make([]float32, rows)}
	for r := range rows {
		x := w[r*cols : (r+1)*cols]
		var mx float32
		for _, v := range x {
			mx = max(mx, abs32(v))
		}
		mx = max(mx, 1e-5)
		inv := 127 / mx
		m.Scales[r] = mx / 127
		d := m.Data[r*stride : r*stride+cols]
		for i, v := range x {
			d[i] = int8(min(max(math.RoundToEven(float64(v*inv)), -127), 127))
		}
	}
	return m, nil
}

// MatMulInt8 computes y[t*w.Rows+r] = float32(dot(W[r], q[t])) * (w.Scales[r] / a.Scale[t]).
// Like MatMul it relies on a.Sum being the sums of a.Q (as Quantize leaves them).
func (e *Engine) MatMulInt8(y []float32, w *Int8Matrix, a *Activations) error {
	if e == nil || e.pool == nil {
		return errNilEngine
	}
	if w == nil || a == nil {
		return fmt.Errorf("%w: nil operand (int8 weights %t, activations %t)", ErrShape, w != nil, a != nil)
	}
	if err := checkActivations(a); err != nil {
		return err
	}
	if w.Cols != a.K || w.Stride != a.Stride || w.Rows <= 0 || len(w.Data) < w.Rows*w.Stride || len(w.Scales) < w.Rows {
		return fmt.Errorf("%w: int8 weights %dx%d (stride %d, %d bytes, %d scales), activations %dx%d (stride %d)",
			ErrShape, w.Rows, w.Cols, w.Stride, len(w.Data), len(w.Scales), a.N, a.K, a.Stride)
	}
	if len(y) != a.N*w.Rows {
		return fmt.Errorf("%w: output has %d floats, want %d tokens x %d rows", ErrShape, len(y), a.N, w.Rows)
	}
	if a.N == 0 {
		return nil
	}
	cls := Head
	if a.N > 1 {
		cls = classOf(a.N, false)
	}
	if e.onAcc[cls] {
		if err := e.acc.MatMulInt8(y, w, a); !errors.Is(err, ErrDeclined) {
			return err
		}
	}
	im := &e.cls[cls].im
	if chunks, per := e.split(w.Rows, a.N, w.Stride); chunks <= 1 {
		im.matMulInt8(y, w, a, 0, w.Rows)
	} else {
		e.pool.do(chunks, e.threads-1, func(c int) { im.matMulInt8(y, w, a, c*per, min((c+1)*per, w.Rows)) })
	}
	return nil
}

// matMulInt8Generic computes rows [r0, r1) of y for every token.
func matMulInt8Generic(y []float32, w *Int8Matrix, a *Activations, r0, r1 int) {
	for t := 0; t < a.N; t++ {
		q := a.Q[t*a.Stride : (t+1)*a.Stride]
		for r := r0; r < r1; r++ {
			row := w.Data[r*w.Stride : (r+1)*w.Stride]
			var s int32
			for i, v := range row {
				s += int32(v) * int32(q[i])
			}
			y[t*w.Rows+r] = float32(s) * (w.Scales[r] / a.Scale[t])
		}
	}
}
