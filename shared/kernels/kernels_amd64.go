package kernels

//go:generate go run ./internal/asmgen -out .

import (
	"unsafe"

	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// The tile families of the amd64 paths (kernels in tiles_amd64.s).
var (
	tern512Set = tileSet{
		gemv: []rowKernel{{4, tern512s_4x1}, {1, tern512s_1x1}},
		R:    4, T: 4, big: tern512_4x4, rows: tern512_4x1, thin: tern512_1x4, one: tern512_1x1,
	}
	tern512bwSet = tileSet{
		gemv: []rowKernel{{8, tern512bw_8x1}, {4, tern512bw_4x1}, {1, tern512bw_1x1}},
		R:    4, T: 4, big: tern512bw_4x4, rows: tern512bw_4x1, thin: tern512bw_1x4, one: tern512bw_1x1,
	}
	tern256Set = tileSet{
		gemv: []rowKernel{{8, tern256_8x1}, {4, tern256_4x1}, {1, tern256_1x1}},
		R:    4, T: 2, big: tern256_4x2, rows: tern256_4x1, thin: tern256_1x2, one: tern256_1x1,
	}
	i8x512Set = tileSet{
		gemv: []rowKernel{{8, i8x512_8x1}, {4, i8x512_4x1}, {1, i8x512_1x1}},
		R:    4, T: 4, big: i8x512_4x4, rows: i8x512_4x1, thin: i8x512_1x4, one: i8x512_1x1,
	}
	tern256vSet = tileSet{
		gemv: []rowKernel{{4, tern256vs_4x1}, {1, tern256vs_1x1}},
		R:    4, T: 4, big: tern256v_4x4, rows: tern256v_4x1, thin: tern256v_1x4, one: tern256v_1x1,
	}
	i8x256vSet = tileSet{
		gemv: []rowKernel{{8, i8x256v_8x1}, {4, i8x256v_4x1}, {1, i8x256v_1x1}},
		R:    4, T: 4, big: i8x256v_4x4, rows: i8x256v_4x1, thin: i8x256v_1x4, one: i8x256v_1x1,
	}
	h4x512Set = tileSet{
		gemv: []rowKernel{{4, h4x512_4x1}, {1, h4x512_1x1}},
		R:    4, T: 4, big: h4x512_4x4, rows: h4x512_4x1, thin: h4x512_1x4, one: h4x512_1x1,
	}
	h6x512Set = tileSet{
		gemv: []rowKernel{{4, h6x512_4x1}, {1, h6x512_1x1}},
		R:    4, T: 2, big: h6x512_4x2, rows: h6x512_4x1, thin: h6x512_1x2, one: h6x512_1x1,
	}
	h4x256vSet = tileSet{
		gemv: []rowKernel{{4, h4x256v_4x1}, {1, h4x256v_1x1}},
		R:    4, T: 4, big: h4x256v_4x4, rows: h4x256v_4x1, thin: h4x256v_1x4, one: h4x256v_1x1,
	}
	h6x256vSet = tileSet{
		gemv: []rowKernel{{4, h6x256v_4x1}, {1, h6x256v_1x1}},
		R:    4, T: 2, big: h6x256v_4x2, rows: h6x256v_4x1, thin: h6x256v_1x2, one: h6x256v_1x1,
	}
	h4x256Set = tileSet{
		gemv: []rowKernel{{4, h4x256_4x1}, {1, h4x256_1x1}},
		R:    4, T: 2, big: h4x256_4x2, rows: h4x256_4x1, thin: h4x256_1x2, one: h4x256_1x1,
	}
	h6x256Set = tileSet{
		gemv: []rowKernel{{2, h6x256_2x1}, {1, h6x256_1x1}},
		R:    2, T: 2, big: h6x256_2x2, rows: h6x256_2x1, thin: h6x256_1x2, one: h6x256_1x1,
	}
	i8x256Set = tileSet{
		gemv: []rowKernel{{4, i8x256_4x1}, {1, i8x256_1x1}},
		R:    4, T: 2, big: i8x256_4x2, rows: i8x256_4x1, thin: i8x256_1x2, one: i8x256_1x1,
	}
)

// maxTileCols bounds the row length of the tile kernels: the split GEMV
// kernels keep lanes scaled by up to 64 below 2^31 only while K < 8M.
const maxTileCols = 1 << 22

// ternaryTiles returns the matMul of impl for a ternary tile set.
func ternaryTiles(ts *tileSet) func(y []float32, w *ternary.Matrix, a *Activations, r0, r1 int) {
	return func(y []float32, w *ternary.Matrix, a *Activations, r0, r1 int) {
		if a.Stride > maxTileCols {
			matMulGeneric(y, w, a, r0, r1)
			return
		}
		rows := w.Rows
		// The per-token factors, divided once per call rather than once
		// per tile (the same division, so the same bits).
		var fbuf [256]float32
		fs := fbuf[:0]
		if a.N <= len(fbuf) {
			fs = fbuf[:a.N]
			for t := range fs {
				fs[t] = w.Scale / a.Scale[t]
			}
		}
		ts.run(w.Codes, w.Stride, a.Q, a.Stride, a.Stride/ternary.BlockSize, r0, r1, a.N,
			func(r, t, R, T int, d *[maxTile]int32) {
				if R == 4 && T == 4 && t+4 <= len(fs) {
					_, _ = y[(t+3)*rows+r+3], a.Sum[t+3] // what the assembly reads and writes is in bounds
					finTern4x4(&y[t*rows+r], rows, &d[0], &a.Sum[t], &fs[t])
					return
				}
				if R == 4 && T == 2 && t+2 <= len(fs) {
					_, _ = y[(t+1)*rows+r+3], a.Sum[t+1]
					finTern4x2(&y[t*rows+r], rows, &d[0], &a.Sum[t], &fs[t])
					return
				}
				if T == 1 && t < len(fs) {
					// One-token products: a column of R rows, one scale.
					f, s := fs[t], a.Sum[t]
					out := y[t*rows+r : t*rows+r+R]
					for i := range out {
						out[i] = float32(d[i]-s) * f
					}
					return
				}
				for j := range T {
					var f float32
					if t+j < len(fs) {
						f = fs[t+j]
					} else {
						f = w.Scale / a.Scale[t+j]
					}
					s := a.Sum[t+j]
					for i := range R {
						y[(t+j)*rows+r+i] = float32(d[i*T+j]-s) * f
					}
				}
			})
	}
}

// int8Tiles returns the matMulInt8 of impl for an int8 tile set whose dots
// carry bias*sum(q) on top of the exact dot.
func int8Tiles(ts *tileSet, bias int32) func(y []float32, w *Int8Matrix, a *Activations, r0, r1 int) {
	return func(y []float32, w *Int8Matrix, a *Activations, r0, r1 int) {
		rows := w.Rows
		data := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(w.Data))), len(w.Data))
		ts.run(data, w.Stride, a.Q, a.Stride, a.Stride/ternary.BlockSize, r0, r1, a.N,
			func(r, t, R, T int, d *[maxTile]int32) {
				if R == 4 && T == 4 {
					_, _, _ = y[(t+3)*rows+r+3], w.Scales[r+3], a.Scale[t+3]
					s := [4]int32{bias * a.Sum[t], bias * a.Sum[t+1], bias * a.Sum[t+2], bias * a.Sum[t+3]}
					finScaled4x4(&y[t*rows+r], rows, &d[0], &s[0], &w.Scales[r], &a.Scale[t])
					return
				}
				if R == 4 && T == 2 {
					_, _, _ = y[(t+1)*rows+r+3], w.Scales[r+3], a.Scale[t+1]
					s := [2]int32{bias * a.Sum[t], bias * a.Sum[t+1]}
					finScaled4x2(&y[t*rows+r], rows, &d[0], &s[0], &w.Scales[r], &a.Scale[t])
					return
				}
				for j := range T {
					s := bias * a.Sum[t+j]
					for i := range R {
						y[(t+j)*rows+r+i] = float32(d[i*T+j]-s) * (w.Scales[r+i] / a.Scale[t+j])
					}
				}
			})
	}
}

// permute512 rearranges each 256-weight block of q as 32-byte chunks
// 0,4,1,5,2,6,3,7, so that 64 bytes of codes shifted by 2n line up with 64
// consecutive bytes of q (the codes of chunks n and 4+n share bytes).
// Rows too long for the tile kernels keep their order: they run generic code.
func permute512(buf []int8, a *Activations) []int8 {
	if a.Stride > maxTileCols {
		return a.Q
	}
	n := a.N * a.Stride
	if cap(buf) < n {
		buf = make([]int8, n)
	}
	buf = buf[:n]
	for b := 0; b < n; b += ternary.BlockSize {
		src, dst := a.Q[b:b+ternary.BlockSize], buf[b:b+ternary.BlockSize]
		for c := range 4 {
			copy(dst[64*c:64*c+32], src[32*c:32*c+32])
			copy(dst[64*c+32:64*c+64], src[128+32*c:128+32*c+32])
		}
	}
	return buf
}

// packedTiles returns the matMulPacked of impl for the 6- and 4-bit tile sets.
func packedTiles(six, four *tileSet) func(y []float32, w *PackedMatrix, a *Activations, r0, r1 int) {
	return func(y []float32, w *PackedMatrix, a *Activations, r0, r1 int) {
		ts := four
		if w.Bits == 6 {
			ts = six
		}
		if ts == nil || a.Stride > maxTileCols {
			matMulPackedGeneric(y, w, a, r0, r1)
			return
		}
		rows, z := w.Rows, w.zero()
		data := unsafe.Slice(unsafe.SliceData(w.Data), len(w.Data))
		ts.run(data, w.Stride, a.Q, a.Stride, a.Stride/ternary.BlockSize, r0, r1, a.N,
			func(r, t, R, T int, d *[maxTile]int32) {
				if R == 4 && T == 4 {
					_, _, _ = y[(t+3)*rows+r+3], w.Scales[r+3], a.Scale[t+3]
					s := [4]int32{z * a.Sum[t], z * a.Sum[t+1], z * a.Sum[t+2], z * a.Sum[t+3]}
					finScaled4x4(&y[t*rows+r], rows, &d[0], &s[0], &w.Scales[r], &a.Scale[t])
					return
				}
				if R == 4 && T == 2 {
					_, _, _ = y[(t+1)*rows+r+3], w.Scales[r+3], a.Scale[t+1]
					s := [2]int32{z * a.Sum[t], z * a.Sum[t+1]}
					finScaled4x2(&y[t*rows+r], rows, &d[0], &s[0], &w.Scales[r], &a.Scale[t])
					return
				}
				for j := range T {
					s := z * a.Sum[t+j]
					for i := range R {
						y[(t+j)*rows+r+i] = float32(d[i*T+j]-s) * (w.Scales[r+i] / a.Scale[t+j])
					}
				}
			})
	}
}

// tritsTiles returns the matMulTrits of impl for 1.6-bit GEMV kernels
// (rows descending, the last 1), each taking nblk = full groups << 3 | planes.
func tritsTiles(gemv []rowKernel) func(y []float32, w *ternary.Matrix, a *Activations, r0, r1 int) {
	ts := &tileSet{gemv: gemv}
	return func(y []float32, w *ternary.Matrix, a *Activations, r0, r1 int) {
		if a.Stride > maxTritCols {
			matMulTritsGeneric(y, w, a, r0, r1)
			return
		}
		_, full, planes := ternary.TritLayout(w.Stride)
		f := w.Scale / a.Scale[0]
		s := a.Sum[0]
		ts.run(w.Trits, ternary.TritStride(w.Stride), a.Q, a.Stride, full<<3|planes, r0, r1, 1,
			func(r, _, R, _ int, d *[maxTile]int32) {
				for i := range R {
					y[r+i] = float32(d[i]-s) * f
				}
			})
	}
}
