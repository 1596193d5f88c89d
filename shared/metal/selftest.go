package metal

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// SelfTest runs every kernel on g once on small shapes with row and column
// tails (ternary, int8, int6 and int4 GEMV and GEMM; quantisation with an
// Inf token) and compares every output bit with package kernels' generic
// path. A node runs it before it advertises metal: it catches a Metal
// compiler or GPU that computes anything differently from the CPU. It takes
// milliseconds on a GPU.
func SelfTest(g *GPU) error {
	cpu, err := kernels.New(kernels.WithPath(kernels.Generic), kernels.WithThreads(1))
	if err != nil {
		return err
	}
	defer cpu.Close()
	rng := rand.New(rand.NewPCG(0x6d65, 0x74616c))
	const rows, cols = 37, 700
	w, err := selfTestTernary(rng, rows, cols)
	if err != nil {
		return err
	}
	wf := make([]float32, rows*cols)
	for i := range wf {
		wf[i] = float32(rng.NormFloat64()) * float32(1+i/cols)
	}
	h8, err := kernels.NewInt8Matrix(rows, cols, wf)
	if err != nil {
		return err
	}
	h6, err := kernels.NewPackedMatrix(rows, cols, 6, wf)
	if err != nil {
		return err
	}
	h4, err := kernels.NewPackedMatrix(rows, cols, 4, wf)
	if err != nil {
		return err
	}
	for _, n := range []int{1, 11} {
		x := make([]float32, n*cols)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * math.Pow(10, float64(i/cols%5)-2))
		}
		if n > 1 {
			x[cols+3] = float32(math.Inf(1)) // token 1: quantised on the CPU
		}
		want, got := kernels.NewActivations(n, cols), kernels.NewActivations(n, cols)
		if err := cpu.Quantize(want, x); err != nil {
			return err
		}
		if err := g.Quantize(got, x); err != nil {
			return fmt.Errorf("quantize %d tokens: %w", n, err)
		}
		for i := range want.Q {
			if got.Q[i] != want.Q[i] {
				return fmt.Errorf("quantize %d tokens: q[%d] = %d, want %d", n, i, got.Q[i], want.Q[i])
			}
		}
		for t := range n {
			if !SameFloat(got.Scale[t], want.Scale[t]) || got.Sum[t] != want.Sum[t] {
				return fmt.Errorf("quantize %d tokens: token %d scale %g sum %d, want %g and %d",
					n, t, got.Scale[t], got.Sum[t], want.Scale[t], want.Sum[t])
			}
		}
		a := want
		for _, c := range []struct {
			name string
			cpu  func([]float32) error
			gpu  func([]float32) error
		}{
			{"ternary", func(y []float32) error { return cpu.MatMul(y, w, a) }, func(y []float32) error { return g.MatMul(y, w, a) }},
			{"int8", func(y []float32) error { return cpu.MatMulInt8(y, h8, a) }, func(y []float32) error { return g.MatMulInt8(y, h8, a) }},
			{"int6", func(y []float32) error { return cpu.MatMulPacked(y, h6, a) }, func(y []float32) error { return g.MatMulPacked(y, h6, a) }},
			{"int4", func(y []float32) error { return cpu.MatMulPacked(y, h4, a) }, func(y []float32) error { return g.MatMulPacked(y, h4, a) }},
		} {
			wantY, gotY := make([]float32, n*rows), make([]float32, n*rows)
			if err := c.cpu(wantY); err != nil {
				return err
			}
			if err := c.gpu(gotY); err != nil {
				return fmt.Errorf("%s, %d tokens: %w", c.name, n, err)
			}
			for i := range wantY {
				if !SameFloat(gotY[i], wantY[i]) {
					return fmt.Errorf("%s %dx%d, %d tokens: y[%d] = %g (%#08x), the CPU computes %g (%#08x)",
						c.name, rows, cols, n, i, gotY[i], math.Float32bits(gotY[i]), wantY[i], math.Float32bits(wantY[i]))
				}
			}
		}
	}
	return nil
}

func selfTestTernary(rng *rand.Rand, rows, cols int) (*ternary.Matrix, error) {
	v := make([]int8, rows*cols)
	for i := range v {
		v[i] = int8(rng.IntN(3)) - 1
	}
	return ternary.Pack(rows, cols, v, 0.0371)
}

// SameFloat reports whether a and b are the same float32 bit for bit, or
// both NaN: IEEE 754 leaves the sign and payload of a NaN that an
// operation produces to the hardware (x86 makes 0xffc00000, arm64
// 0x7fc00000), so NaNs match whatever their bits.
func SameFloat(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}
