package kernels

import (
	"fmt"

	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// Engine runs the kernels of one path on a pool of worker threads.
// An Engine is safe for concurrent use.
type Engine struct {
	path    Path
	threads int
}

// Option configures an Engine.
type Option func(*Engine)

// WithPath forces a kernel path; New fails if the CPU lacks it.
func WithPath(p Path) Option { return func(e *Engine) { e.path = p } }

// WithThreads sets the number of worker threads (default GOMAXPROCS).
func WithThreads(n int) Option { return func(e *Engine) { e.threads = n } }

// New returns an Engine on the best path of this CPU unless an option says otherwise.
func New(opts ...Option) (*Engine, error) {
	e := &Engine{path: Generic, threads: 1}
	for _, o := range opts {
		o(e)
	}
	if e.path != Generic {
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, e.path)
	}
	return e, nil
}

// Path returns the kernel path the engine runs.
func (e *Engine) Path() Path { return e.path }

// Threads returns the number of worker threads.
func (e *Engine) Threads() int { return e.threads }

// Close stops the worker threads.
func (e *Engine) Close() {}

// MatMul computes y[t*w.Rows+r] = dot(T[r], q[t]) * (w.Scale / a.Scale[t]) for
// every token t < a.N and row r < w.Rows. The int32 dot is exact; the float
// scaling is the same on every path, so all paths agree bit for bit.
func (e *Engine) MatMul(y []float32, w *ternary.Matrix, a *Activations) error {
	if w == nil || a == nil {
		return fmt.Errorf("%w: nil operand", ErrShape)
	}
	if w.Cols != a.K {
		return fmt.Errorf("%w: weights %dx%d, activations %dx%d", ErrShape, w.Rows, w.Cols, a.N, a.K)
	}
	if len(y) != a.N*w.Rows {
		return fmt.Errorf("%w: output has %d floats, want %d tokens x %d rows", ErrShape, len(y), a.N, w.Rows)
	}
	matMulGeneric(y, w, a, 0, w.Rows)
	return nil
}

// matMulGeneric computes rows [r0, r1) of y for every token.
func matMulGeneric(y []float32, w *ternary.Matrix, a *Activations, r0, r1 int) {
	for t := 0; t < a.N; t++ {
		q := a.Q[t*a.Stride : (t+1)*a.Stride]
		f := w.Scale / a.Scale[t]
		for r := r0; r < r1; r++ {
			d := dotGeneric(w.Codes[r*w.Stride:(r+1)*w.Stride], q) - a.Sum[t]
			y[t*w.Rows+r] = float32(d) * f
		}
	}
}

// dotGeneric returns dot(codes, q) over len(q) weights in the ternary layout.
func dotGeneric(codes []byte, q []int8) int32 {
	var s int32
	for g := 0; g < len(q)/ternary.GroupSize; g++ {
		c := codes[g*ternary.GroupBytes : (g+1)*ternary.GroupBytes]
		x := q[g*ternary.GroupSize : (g+1)*ternary.GroupSize]
		for m := 0; m < ternary.GroupBytes; m++ {
			b := c[m]
			s += int32(b&3)*int32(x[m]) + int32(b>>2&3)*int32(x[32+m]) +
				int32(b>>4&3)*int32(x[64+m]) + int32(b>>6)*int32(x[96+m])
		}
	}
	return s
}
