package model

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/bitnet-mesh/bitnet-mesh/shared/half"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// embedding stores the token embedding in the smallest exact form: bf16 or
// fp16 when every value converts losslessly (checkpoints ship bf16
// embeddings, so a 2B model keeps 0.6 GiB instead of 1.3 GiB), else float32;
// or it reads the int8 head's rows (WithEmbedInt8).
type embedding struct {
	rows, cols int
	f32        []float32
	u16        []uint16
	bf16       bool // u16 holds bf16 (else fp16)
	i8         *kernels.Int8Matrix
}

func newEmbedding(e []float32, rows, cols int) embedding {
	em := embedding{rows: rows, cols: cols}
	if u, ok := convertExact(e, bf16Exact); ok {
		em.u16, em.bf16 = u, true
	} else if u, ok := convertExact(e, fp16Exact); ok {
		em.u16 = u
	} else {
		em.f32 = e
	}
	return em
}

// convertExact converts e with conv on all cores, failing as soon as one
// value does not convert losslessly.
func convertExact(e []float32, conv func(uint32) (uint16, bool)) ([]uint16, bool) {
	u := make([]uint16, len(e))
	var failed atomic.Bool
	parallelFor(len(e), 1<<16, func(lo, hi int) {
		for i, v := range e[lo:hi] {
			h, ok := conv(math.Float32bits(v))
			if !ok {
				failed.Store(true)
				return
			}
			u[lo+i] = h
			if i&0xffff == 0 && failed.Load() {
				return
			}
		}
	})
	if failed.Load() {
		return nil, false
	}
	return u, true
}

// bf16Exact returns the bf16 bits of float32 bits b when the low 16 bits are zero.
func bf16Exact(b uint32) (uint16, bool) { return uint16(b >> 16), b&0xffff == 0 }

// fp16Exact returns the IEEE half bits of float32 bits b when the value is
// exactly representable (zeros, normals, subnormals, infinities; not NaN).
func fp16Exact(b uint32) (uint16, bool) {
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127
	mant := b & 0x7fffff
	switch {
	case b&0x7fffffff == 0:
		return sign, true
	case exp >= -14 && exp <= 15:
		return sign | uint16(exp+15)<<10 | uint16(mant>>13), mant&0x1fff == 0
	case exp >= -24 && exp < -14:
		// Subnormal half: a multiple of 2^-24, (1.mant * 2^exp) / 2^-24.
		shift := uint(-1 - exp)
		full := 0x800000 | mant
		return sign | uint16(full>>shift), full&(1<<shift-1) == 0
	case exp == 128 && mant == 0:
		return sign | 0x7c00, true
	}
	return 0, false
}

// row writes embedding row id into dst (len cols).
func (em *embedding) row(dst []float32, id int) {
	off := id * em.cols
	switch {
	case em.i8 != nil:
		q, sc := em.i8.Data[id*em.i8.Stride:id*em.i8.Stride+em.cols], em.i8.Scales[id]
		for i, v := range q {
			dst[i] = float32(v) * sc
		}
	case em.f32 != nil:
		copy(dst, em.f32[off:off+em.cols])
	case em.bf16:
		for i, h := range em.u16[off : off+em.cols] {
			dst[i] = math.Float32frombits(uint32(h) << 16)
		}
	default:
		for i, h := range em.u16[off : off+em.cols] {
			dst[i] = half.FromFloat16(h)
		}
	}
}

// bytes returns the memory held by the embedding.
func (em *embedding) bytes() int { return 4*len(em.f32) + 2*len(em.u16) }

// quantizeInt8Rows quantises a rows x cols float matrix to int8 per row
// (absmax, round half to even, as kernels.QuantizeRow) for the int8 output head.
func quantizeInt8Rows(w []float32, rows, cols int) *kernels.Int8Matrix {
	m := newInt8Matrix(rows, cols)
	parallelFor(rows, 64, func(lo, hi int) { quantizeRowsInto(m, w[lo*cols:hi*cols], lo, hi) })
	return m
}

// quantizeRowsInto quantises x, rows [lo, hi) of a float matrix, into m.
func quantizeRowsInto(m *kernels.Int8Matrix, x []float32, lo, hi int) {
	for r := lo; r < hi; r++ {
		o := (r - lo) * m.Cols
		m.Scales[r] = quantizeRowInt8(m.Data[r*m.Stride:r*m.Stride+m.Cols], x[o:o+m.Cols])
	}
}

// newInt8Matrix allocates a rows x cols int8 matrix with padded rows.
func newInt8Matrix(rows, cols int) *kernels.Int8Matrix {
	stride := ternary.PaddedCols(cols)
	return &kernels.Int8Matrix{Rows: rows, Cols: cols, Stride: stride,
		Data: make([]int8, rows*stride), Scales: make([]float32, rows)}
}

// quantizeRowInt8 writes q = round_half_even(x * 127/max|x|) and returns the
// scale that maps q back to x (max|x|/127, as 1/(127/max)): the activation
// quantiser of kernels.QuantizeRow (SIMD where the CPU has it), which never
// reaches its -128 clamp because |x * 127/max|x|| <= 127.
func quantizeRowInt8(q []int8, x []float32) float32 {
	s, _ := kernels.QuantizeRow(q[:len(x)], x)
	return 1 / s
}

// parallelFor splits [0, n) into chunks of at least grain items over up to
// GOMAXPROCS goroutines and waits for them.
func parallelFor(n, grain int, f func(lo, hi int)) {
	workers := min(runtime.GOMAXPROCS(0), (n+grain-1)/grain)
	if workers <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			f(lo, hi)
		}(lo, min(lo+chunk, n))
	}
	wg.Wait()
}
