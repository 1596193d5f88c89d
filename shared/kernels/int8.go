package kernels

import "fmt"

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

// MatMulInt8 computes y[t*w.Rows+r] = dot(W[r], q[t]) * (w.Scales[r] / a.Scale[t]).
func (e *Engine) MatMulInt8(y []float32, w *Int8Matrix, a *Activations) error {
	if w == nil || a == nil {
		return fmt.Errorf("%w: nil operand", ErrShape)
	}
	if w.Cols != a.K || w.Stride != a.Stride {
		return fmt.Errorf("%w: int8 weights %dx%d, activations %dx%d", ErrShape, w.Rows, w.Cols, a.N, a.K)
	}
	if len(y) != a.N*w.Rows {
		return fmt.Errorf("%w: output has %d floats, want %d tokens x %d rows", ErrShape, len(y), a.N, w.Rows)
	}
	for t := 0; t < a.N; t++ {
		q := a.Q[t*a.Stride : (t+1)*a.Stride]
		for r := 0; r < w.Rows; r++ {
			row := w.Data[r*w.Stride : (r+1)*w.Stride]
			var s int32
			for i, v := range row {
				s += int32(v) * int32(q[i])
			}
			y[t*w.Rows+r] = float32(s) * (w.Scales[r] / a.Scale[t])
		}
	}
	return nil
}
