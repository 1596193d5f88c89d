package kernels

import (
	"errors"
	"fmt"
	"slices"

	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// Metal is the Apple GPU path (package metal): the products (ternary
// linears and the output head) run on the GPU, bit-identical to the CPU
// paths; activation quantisation and the float work stay on the CPU's best
// path. It is an accelerator's path, not a CPU's: an engine runs it only
// with WithAccelerator, and Supported never lists it.
const Metal Path = "metal"

// Accelerator runs the products of an engine on a device beside the CPU
// (package metal's GPU). Its results must be bit-identical to the generic
// path's; a product it does not run (too large for the device, say) it
// declines with an error wrapping ErrDeclined, and the engine runs that
// product on the CPU.
type Accelerator interface {
	// Path is the accelerator's kernel path (Metal).
	Path() Path
	// Name describes the device (it keys cached plans).
	Name() string
	// MatMulMany computes MatMul(ys[i], ws[i], a) for every i, in one
	// submission to the device.
	MatMulMany(ys [][]float32, ws []*ternary.Matrix, a *Activations) error
	MatMulInt8(y []float32, w *Int8Matrix, a *Activations) error
	MatMulPacked(y []float32, w *PackedMatrix, a *Activations) error
}

// ErrDeclined reports a product an accelerator does not run.
var ErrDeclined = errors.New("kernels: product declined by the accelerator")

// WithAccelerator lets the plan put product classes on acc: a plan's
// "metal" variant (Variant(Metal)) and the forced path Metal need it. The
// caller keeps ownership of acc.
func WithAccelerator(acc Accelerator) Option { return func(e *Engine) { e.acc = acc } }

// Accelerator returns the engine's accelerator (nil without one).
func (e *Engine) Accelerator() Accelerator { return e.acc }

// accelVariant is the plan's name for running a class on the accelerator.
const accelVariant = Variant(Metal)

// accelClass reports whether the plan may put class c on an accelerator:
// the products; quantisation stays with the CPU, which holds the floats.
func accelClass(c Class) bool { return c != Quantize }

// AcceleratedPlan returns the plan of the forced path Metal: every product
// class on the accelerator, quantisation on the widest CPU path.
func AcceleratedPlan() Plan {
	p := ForcedPlan(Best())
	p.Forced = Metal
	for _, c := range Classes() {
		if accelClass(c) {
			p.Choice[c] = accelVariant
		}
	}
	return p
}

// resolveAccel sets, for every class the plan puts on the accelerator, the
// CPU variant that runs what the accelerator declines.
func (e *Engine) resolveAccel(plan Plan) error {
	for _, c := range Classes() {
		if plan.Choice[c] != accelVariant {
			continue
		}
		if e.acc == nil {
			return fmt.Errorf("%w: the plan runs %s on %s, and the engine has no accelerator", ErrUnsupported, c, Metal)
		}
		if !accelClass(c) {
			return fmt.Errorf("kernels: plan runs %s on %s; it runs on the CPU", c, Metal)
		}
		e.onAcc[c] = true
		e.cls[c], _ = defaultVariant(Best())
	}
	return nil
}

// MatMuls computes MatMul(ys[i], ws[i], a) (MatMulResident when resident)
// for every i: on an accelerator in one submission, on the CPU's threads in
// one hand-off (the rows of all matrices split into one set of chunks:
// one wake-up and one tail instead of one per matrix).
func (e *Engine) MatMuls(ys [][]float32, ws []*ternary.Matrix, a *Activations, resident bool) error {
	if len(ys) != len(ws) {
		return fmt.Errorf("%w: %d outputs for %d matrices", ErrShape, len(ys), len(ws))
	}
	if e != nil && e.acc != nil && a != nil && len(ws) > 1 && e.onAcc[classOf(a.N, resident)] {
		for i, w := range ws {
			if err := e.checkMatMul(ys[i], w, a); err != nil {
				return err
			}
		}
		if a.N == 0 {
			return nil
		}
		// Copies of the slices go to the accelerator, so that the
		// caller's (often on its stack) do not escape: a CPU decode step
		// allocates nothing.
		b, _ := e.batches.Get().(*batch)
		if b == nil {
			b = new(batch)
		}
		b.ys, b.ws = append(b.ys[:0], ys...), append(b.ws[:0], ws...)
		err := e.acc.MatMulMany(b.ys, b.ws, a)
		clear(b.ys)
		clear(b.ws)
		e.batches.Put(b)
		if !errors.Is(err, ErrDeclined) {
			return err
		}
	}
	if e.fusable(ws, a, resident) {
		for i, w := range ws {
			if err := e.checkMatMul(ys[i], w, a); err != nil {
				return err
			}
		}
		e.matMulsFused(ys, ws, a, resident)
		return nil
	}
	for i, w := range ws {
		if err := e.matMul(ys[i], w, a, resident); err != nil {
			return err
		}
	}
	return nil
}

// batch is pooled scratch for MatMuls: the operands, and for the CPU's
// fused hand-off each matrix's first chunk and rows per chunk.
type batch struct {
	ys         [][]float32
	ws         []*ternary.Matrix
	first, per []int
	trits      []bool // matrix i's product reads its 1.6-bit layout
}

// Preparer is implemented by accelerators that map a model's weights ahead
// of its first product (package metal's GPU).
type Preparer interface {
	// Prepare maps ws and the head (either may be nil) into the device and
	// returns the device memory they take beyond the CPU's (copies).
	Prepare(ws []*ternary.Matrix, h8 *Int8Matrix, hp *PackedMatrix) (int64, error)
}

// Prepare maps a model's matrices into the accelerator when the plan runs
// products there, and returns the device memory they add beyond the CPU's
// (0 without an accelerator). Matrices the device declines are not an
// error: their products run on the CPU.
func (e *Engine) Prepare(ws []*ternary.Matrix, h8 *Int8Matrix, hp *PackedMatrix) (int64, error) {
	if e == nil || !slices.Contains(e.onAcc[:], true) {
		return 0, nil
	}
	p, ok := e.acc.(Preparer)
	if !ok {
		return 0, nil
	}
	n, err := p.Prepare(ws, h8, hp)
	if errors.Is(err, ErrDeclined) {
		err = nil
	}
	return n, err
}
