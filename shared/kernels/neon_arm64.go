package kernels

import (
	"math"

	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// Assembly kernels (neon_arm64.s). Each returns exact int32 dot products;
// groups counts 128-weight groups (32 code bytes, 128 activations), steps
// counts 64-byte steps of int8 rows. Rows are stride bytes apart, tokens
// qstride activations apart. The 4x1 (GEMV) kernels run blocks >= 1 blocks
// of 4 consecutive rows against one token and write 4*blocks sums to out.
// Callers guarantee every byte read or written is in bounds.

//go:noescape
func tern4x1SDOT(codes *byte, stride int, q *int8, groups, blocks int, out *int32)

//go:noescape
func tern1x1SDOT(codes *byte, q *int8, groups int) int32

//go:noescape
func tern4x4SDOT(codes *byte, stride int, q *int8, qstride int, groups int, out *[16]int32)

//go:noescape
func tern4x1NEON(codes *byte, stride int, q *int8, groups, blocks int, out *int32)

//go:noescape
func tern1x1NEON(codes *byte, q *int8, groups int) int32

//go:noescape
func tern4x2NEON(codes *byte, stride int, q *int8, qstride int, groups int, out *[16]int32)

//go:noescape
func int84x1SDOT(w *int8, stride int, q *int8, steps, blocks int, out *int32)

//go:noescape
func int81x1SDOT(w *int8, q *int8, steps int) int32

//go:noescape
func int84x4SDOT(w *int8, stride int, q *int8, qstride int, steps32 int, out *[16]int32)

//go:noescape
func int84x1NEON(w *int8, stride int, q *int8, steps, blocks int, out *int32)

//go:noescape
func int81x1NEON(w *int8, q *int8, steps int) int32

// maxMaskGroups bounds the groups per row of the SDOT GEMV kernels: they sum
// codes masked in place (up to 32 times a weight) and shift the sums back at
// the end, exact only while no 32-bit lane wraps (each grows by at most
// 8*32*128 = 2^15 per group). Longer rows (K > 4M) use the plain kernels.
const maxMaskGroups = 1 << 15

// gemvBlocks is the most 4-row blocks one GEMV kernel call runs: enough to
// amortize the call, few enough for a stack buffer of sums.
const gemvBlocks = 16

// gemmPanelBytes sizes the row panels of GEMM: the weights of one panel
// (rows x stride bytes) stay in L1 while every 4-token block passes over them,
// so weights are read from memory once per call, not once per token block.
const gemmPanelBytes = 16 << 10

// stack16 and stackGEMV return their argument. The kernels are called
// through func values, so the compiler would move a buffer passed to them to
// the heap (an allocation per product); none of them keeps the pointer, and
// these assembly identity functions, declared noescape, say so.
//
//go:noescape
func stack16(p *[16]int32) *[16]int32

//go:noescape
func stackGEMV(p *[4 * gemvBlocks]int32) *[4 * gemvBlocks]int32

// gemmTiles calls tile(r, t) for every tile of 4 rows x nt tokens in rows
// [r0, r4) and tokens [0, n) (r4-r0 a multiple of 4, n of nt), panel by
// panel of rows.
func gemmTiles(r0, r4, n, nt, rowBytes int, tile func(r, t int)) {
	panel := max(4, gemmPanelBytes/max(rowBytes, 1)/4*4)
	for rp := r0; rp < r4; rp += panel {
		re := min(rp+panel, r4)
		for t := 0; t < n; t += nt {
			for r := rp; r < re; r += 4 {
				tile(r, t)
			}
		}
	}
}

// neonKernels is one variant (SDOT or plain NEON) of the assembly kernels.
// tTile is the GEMM tile for 4 rows x tTokens tokens; i4x4 may be nil: GEMM
// then runs the GEMV kernel once per token.
type neonKernels struct {
	t4x1 func(codes *byte, stride int, q *int8, groups, blocks int, out *int32)
	t1x1 func(codes *byte, q *int8, groups int) int32
	// maxGroups is the longest row (in groups) t4x1 and t1x1 handle exactly.
	maxGroups int
	tTile     func(codes *byte, stride int, q *int8, qstride int, groups int, out *[16]int32)
	tTokens   int
	i4x1      func(w *int8, stride int, q *int8, steps, blocks int, out *int32)
	i1x1      func(w *int8, q *int8, steps int) int32
	// i4x4 (may be nil) counts 32-byte steps.
	i4x4 func(w *int8, stride int, q *int8, qstride int, steps32 int, out *[16]int32)
}

// neonImpl returns the NEON path's implementation, using SDOT when sdot is
// set (tests force both variants through it).
func neonImpl(sdot bool) impl {
	k := neonVariant(sdot, maxMaskGroups)
	return impl{matMul: k.matMul, matMulInt8: k.matMulInt8}
}

// neonVariant returns the kernels of one variant; tests lower maxGroups to
// reach the fallback for long rows.
func neonVariant(sdot bool, maxGroups int) *neonKernels {
	if sdot {
		return &neonKernels{t4x1: tern4x1SDOT, t1x1: tern1x1SDOT, maxGroups: maxGroups, tTile: tern4x4SDOT, tTokens: 4,
			i4x1: int84x1SDOT, i1x1: int81x1SDOT, i4x4: int84x4SDOT}
	}
	return &neonKernels{t4x1: tern4x1NEON, t1x1: tern1x1NEON, maxGroups: math.MaxInt,
		tTile: tern4x2NEON, tTokens: 2, i4x1: int84x1NEON, i1x1: int81x1NEON}
}

// matMul computes rows [r0, r1) of y for every token, like matMulGeneric:
// tiles of 4 rows x tTokens tokens, then 4 rows x 1 token, then single rows.
func (k *neonKernels) matMul(y []float32, w *ternary.Matrix, a *Activations, r0, r1 int) {
	groups := a.Stride / ternary.GroupSize
	if r0 >= r1 || a.N == 0 || groups == 0 {
		return
	}
	// Bounds the assembly relies on; the engine has checked them, these make
	// a violation a Go panic rather than a stray read.
	_ = w.Codes[(r1-1)*w.Stride+groups*ternary.GroupBytes-1]
	_ = a.Q[(a.N-1)*a.Stride+groups*ternary.GroupSize-1]
	_ = y[(a.N-1)*w.Rows+r1-1]
	_, _ = a.Scale[a.N-1], a.Sum[a.N-1]

	t4x1, t1x1 := k.t4x1, k.t1x1
	if groups > k.maxGroups {
		t4x1, t1x1 = tern4x1NEON, tern1x1NEON
	}
	t := 0
	if nt := k.tTokens; nt > 0 && a.N >= nt {
		t = a.N / nt * nt
		r4 := r0 + (r1-r0)/4*4
		var buf [16]int32
		out := stack16(&buf)
		gemmTiles(r0, r4, t, nt, w.Stride, func(r, t int) {
			k.tTile(&w.Codes[r*w.Stride], w.Stride, &a.Q[t*a.Stride], a.Stride, groups, out)
			for j := range nt {
				f := w.Scale / a.Scale[t+j]
				yt := y[(t+j)*w.Rows+r : (t+j)*w.Rows+r+4]
				for i := range 4 {
					yt[i] = float32(out[4*j+i]-a.Sum[t+j]) * f
				}
			}
		})
		for r := r4; r < r1; r++ {
			for j := range t {
				d := t1x1(&w.Codes[r*w.Stride], &a.Q[j*a.Stride], groups) - a.Sum[j]
				y[j*w.Rows+r] = float32(d) * (w.Scale / a.Scale[j])
			}
		}
	}
	var gbuf [4 * gemvBlocks]int32
	out := stackGEMV(&gbuf)
	for ; t < a.N; t++ {
		q := &a.Q[t*a.Stride]
		f := w.Scale / a.Scale[t]
		yt := y[t*w.Rows : (t+1)*w.Rows]
		r := r0
		for r+4 <= r1 {
			nb := min(gemvBlocks, (r1-r)/4)
			t4x1(&w.Codes[r*w.Stride], w.Stride, q, groups, nb, &out[0])
			for i, d := range out[:4*nb] {
				yt[r+i] = float32(d-a.Sum[t]) * f
			}
			r += 4 * nb
		}
		for ; r < r1; r++ {
			yt[r] = float32(t1x1(&w.Codes[r*w.Stride], q, groups)-a.Sum[t]) * f
		}
	}
}

// int8Step is the number of int8 weights the assembly consumes per step.
const int8Step = 64

// matMulInt8 computes rows [r0, r1) of y for every token, like matMulInt8Generic.
func (k *neonKernels) matMulInt8(y []float32, w *Int8Matrix, a *Activations, r0, r1 int) {
	steps := a.Stride / int8Step
	if r0 >= r1 || a.N == 0 || steps == 0 {
		return
	}
	_ = w.Data[(r1-1)*w.Stride+steps*int8Step-1]
	_ = a.Q[(a.N-1)*a.Stride+steps*int8Step-1]
	_ = y[(a.N-1)*w.Rows+r1-1]
	_, _ = a.Scale[a.N-1], w.Scales[r1-1]

	t := 0
	if k.i4x4 != nil && a.N >= 4 {
		t = a.N / 4 * 4
		r4 := r0 + (r1-r0)/4*4
		var buf [16]int32
		out := stack16(&buf)
		gemmTiles(r0, r4, t, 4, w.Stride, func(r, t int) {
			k.i4x4(&w.Data[r*w.Stride], w.Stride, &a.Q[t*a.Stride], a.Stride, steps*int8Step/32, out)
			for j := range 4 {
				yt := y[(t+j)*w.Rows+r : (t+j)*w.Rows+r+4]
				for i := range 4 {
					yt[i] = float32(out[4*j+i]) * (w.Scales[r+i] / a.Scale[t+j])
				}
			}
		})
		for r := r4; r < r1; r++ {
			for j := range t {
				y[j*w.Rows+r] = float32(k.i1x1(&w.Data[r*w.Stride], &a.Q[j*a.Stride], steps)) * (w.Scales[r] / a.Scale[j])
			}
		}
	}
	var gbuf [4 * gemvBlocks]int32
	out := stackGEMV(&gbuf)
	for ; t < a.N; t++ {
		q := &a.Q[t*a.Stride]
		yt := y[t*w.Rows : (t+1)*w.Rows]
		r := r0
		for r+4 <= r1 {
			nb := min(gemvBlocks, (r1-r)/4)
			k.i4x1(&w.Data[r*w.Stride], w.Stride, q, steps, nb, &out[0])
			for i, d := range out[:4*nb] {
				yt[r+i] = float32(d) * (w.Scales[r+i] / a.Scale[t])
			}
			r += 4 * nb
		}
		for ; r < r1; r++ {
			yt[r] = float32(k.i1x1(&w.Data[r*w.Stride], q, steps)) * (w.Scales[r] / a.Scale[t])
		}
	}
}
