package kernels

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// HeadFormat is how the output head is stored: int8 rows (Int8Matrix) or
// 6- and 4-bit rows (PackedMatrix), each with one float scale per row and
// multiplied with int8 activations. Fewer bits read fewer bytes per
// decoded token (the head of BitNet b1.58 2B4T is 328 MB in int8, 246 MB
// in int6, 164 MB in int4) at a perplexity cost measured per model.
type HeadFormat string

// The head formats.
const (
	HeadInt8 HeadFormat = "int8"
	HeadInt6 HeadFormat = "int6"
	HeadInt4 HeadFormat = "int4"
)

// DefaultHeadFormat is the head format of models loaded without another
// (model.DefaultHeadFormat), and the one plans time the head in.
const DefaultHeadFormat = HeadInt6

// ParseHeadFormat parses "int8", "int6" or "int4".
func ParseHeadFormat(s string) (HeadFormat, error) {
	switch f := HeadFormat(strings.ToLower(strings.TrimSpace(s))); f {
	case HeadInt8, HeadInt6, HeadInt4:
		return f, nil
	}
	return "", fmt.Errorf("kernels: unknown head format %q (want int8, int6 or int4)", s)
}

// Bits returns the bits per weight (8, 6 or 4; 0 for an unknown format).
func (f HeadFormat) Bits() int {
	switch f {
	case HeadInt8:
		return 8
	case HeadInt6:
		return 6
	case HeadInt4:
		return 4
	}
	return 0
}

// PackedMatrix is a rows x cols matrix of 6- or 4-bit signed values with
// one scale per row: W[r][c] ~= Value(r, c) * Scales[r]. Each row holds
// PaddedCols(cols)/256 blocks of 256 weights; a block stores u = w + 2^(bits-1)
// (w in [-31, 31] or [-7, 7]) as 128 bytes of nibbles (byte j: low nibble
// weight j, high nibble weight 128+j), then for 6 bits 64 bytes of the high
// two bits (byte j, bits 2n..2n+1: weight 64n+j). Padding weights are 0.
// The layout pairs every SIMD vector of u with consecutive activations, so
// the kernels multiply unsigned u with int8 q (VPDPBUSD, VPMADDUBSW) and
// subtract 2^(bits-1)*sum(q).
type PackedMatrix struct {
	Rows, Cols int
	Bits       int // 6 or 4
	// Stride is the bytes between rows: blocks of 192 (6 bits) or 128.
	Stride int
	Data   []byte
	Scales []float32
}

// packedBlockBytes returns the bytes of one 256-weight block.
func packedBlockBytes(bits int) int {
	if bits == 6 {
		return 192
	}
	return 128
}

// zero returns the offset added to stored values, 2^(bits-1).
func (m *PackedMatrix) zero() int32 { return 1 << (m.Bits - 1) }

// NewPackedMatrix quantises rows x cols float32 weights w (row-major) to
// bits (6 or 4) per weight. Each row's scale minimises the squared error
// over a few clipping levels of max|w| (clipping the largest weights of a
// row loses less than coarse steps for all of them); values round half to
// even.
func NewPackedMatrix(rows, cols, bits int, w []float32) (*PackedMatrix, error) {
	if len(w) != rows*cols {
		return nil, fmt.Errorf("%w: packed matrix %dx%d got %d floats, want %d", ErrShape, rows, cols, len(w), rows*cols)
	}
	m, err := NewPackedRows(rows, cols, bits)
	if err != nil {
		return nil, err
	}
	q := make([]int8, cols)
	for r := range rows {
		m.SetRow(r, w[r*cols:(r+1)*cols], q)
	}
	return m, nil
}

// NewPackedRows returns a rows x cols matrix of bits (6 or 4) whose values
// are all 0, to fill with SetRow.
func NewPackedRows(rows, cols, bits int) (*PackedMatrix, error) { return allocPacked(rows, cols, bits) }

// SetRow quantises the Cols floats x into row r as NewPackedMatrix does;
// scratch (len >= Cols, or nil) avoids an allocation. Rows may be set
// concurrently.
func (m *PackedMatrix) SetRow(r int, x []float32, scratch []int8) {
	if len(scratch) < m.Cols {
		scratch = make([]int8, m.Cols)
	}
	q := scratch[:m.Cols]
	m.Scales[r] = quantizePackedRow(q, x[:m.Cols], m.Bits)
	m.setRow(r, q)
}

func allocPacked(rows, cols, bits int) (*PackedMatrix, error) {
	if rows <= 0 || cols <= 0 {
		return nil, fmt.Errorf("%w: packed matrix %dx%d must have positive dimensions", ErrShape, rows, cols)
	}
	if bits != 6 && bits != 4 {
		return nil, fmt.Errorf("kernels: packed matrix of %d bits, want 6 or 4", bits)
	}
	stride := ternary.PaddedCols(cols) / ternary.BlockSize * packedBlockBytes(bits)
	m := &PackedMatrix{Rows: rows, Cols: cols, Bits: bits, Stride: stride, Data: make([]byte, rows*stride), Scales: make([]float32, rows)}
	m.setRow(0, make([]int8, cols)) // padding and all: u = 2^(bits-1)
	for r := 1; r < rows; r++ {
		copy(m.Data[r*stride:(r+1)*stride], m.Data[:stride])
	}
	return m, nil
}

// quantizePackedRow writes x quantised to bits into q and returns the scale.
func quantizePackedRow(q []int8, x []float32, bits int) float32 {
	lim := float32(int(1)<<(bits-1) - 1) // 31 or 7
	var mx float32
	for _, v := range x {
		mx = max(mx, abs32(v))
	}
	mx = max(mx, 1e-5)
	best, bestErr := float32(0), math.Inf(1)
	for _, clip := range []float32{1, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7} {
		s := mx * clip / lim
		inv := 1 / s
		var e float64
		for _, v := range x {
			k := min(max(float32(math.RoundToEven(float64(v*inv))), -lim), lim)
			d := float64(v - k*s)
			e += d * d
		}
		if e < bestErr {
			best, bestErr = s, e
		}
	}
	inv := 1 / best
	for i, v := range x {
		q[i] = int8(min(max(math.RoundToEven(float64(v*inv)), float64(-lim)), float64(lim)))
	}
	return best
}

// setRow stores the values q (len Cols) of row r.
func (m *PackedMatrix) setRow(r int, q []int8) {
	row := m.Data[r*m.Stride : (r+1)*m.Stride]
	bb := packedBlockBytes(m.Bits)
	z := m.zero()
	for b := 0; b < len(row)/bb; b++ {
		blk := row[b*bb : (b+1)*bb]
		clear(blk)
		for j := range ternary.BlockSize {
			c := b*ternary.BlockSize + j
			var u byte = byte(z)
			if c < len(q) {
				u = byte(int32(q[c]) + z)
			}
			if j < 128 {
				blk[j] |= u & 15
			} else {
				blk[j-128] |= (u & 15) << 4
			}
			if m.Bits == 6 {
				blk[128+j%64] |= (u >> 4) << (2 * (j / 64))
			}
		}
	}
}

// Value returns the signed value of element (r, c).
func (m *PackedMatrix) Value(r, c int) int8 {
	bb := packedBlockBytes(m.Bits)
	blk := m.Data[r*m.Stride+c/ternary.BlockSize*bb:]
	j := c % ternary.BlockSize
	var u byte
	if j < 128 {
		u = blk[j] & 15
	} else {
		u = blk[j-128] >> 4
	}
	if m.Bits == 6 {
		u |= (blk[128+j%64] >> (2 * (j / 64)) & 3) << 4
	}
	return int8(int32(u) - m.zero())
}

// Row writes the dequantised row r (Cols floats) into dst.
func (m *PackedMatrix) Row(dst []float32, r int) {
	for c := range m.Cols {
		dst[c] = float32(m.Value(r, c)) * m.Scales[r]
	}
}

// MatMulPacked computes y[t*w.Rows+r] = float32(dot(W[r], q[t])) * (w.Scales[r] / a.Scale[t])
// like MatMulInt8 (one token runs the plan's Head variant).
func (e *Engine) MatMulPacked(y []float32, w *PackedMatrix, a *Activations) error {
	if e == nil || e.pool == nil {
		return errNilEngine
	}
	if w == nil || a == nil {
		return fmt.Errorf("%w: nil operand (packed weights %t, activations %t)", ErrShape, w != nil, a != nil)
	}
	if err := checkActivations(a); err != nil {
		return err
	}
	if w.Cols != a.K || (w.Bits != 6 && w.Bits != 4) || w.Rows <= 0 || w.Stride != a.Stride/ternary.BlockSize*packedBlockBytes(w.Bits) ||
		len(w.Data) < w.Rows*w.Stride || len(w.Scales) < w.Rows {
		return fmt.Errorf("%w: packed %d-bit weights %dx%d (stride %d, %d bytes, %d scales), activations %dx%d (stride %d)",
			ErrShape, w.Bits, w.Rows, w.Cols, w.Stride, len(w.Data), len(w.Scales), a.N, a.K, a.Stride)
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
		if err := e.acc.MatMulPacked(y, w, a); !errors.Is(err, ErrDeclined) {
			return err
		}
	}
	im := &e.cls[cls].im
	f := im.matMulPacked
	if f == nil {
		f = matMulPackedGeneric
	}
	if chunks, per := e.split(w.Rows, a.N, w.Stride); chunks <= 1 {
		f(y, w, a, 0, w.Rows)
	} else {
		e.pool.do(chunks, e.threads-1, func(c int) { f(y, w, a, c*per, min((c+1)*per, w.Rows)) })
	}
	return nil
}

// matMulPackedGeneric computes rows [r0, r1) of y for every token.
func matMulPackedGeneric(y []float32, w *PackedMatrix, a *Activations, r0, r1 int) {
	bb := packedBlockBytes(w.Bits)
	z := w.zero()
	for t := 0; t < a.N; t++ {
		q := a.Q[t*a.Stride : (t+1)*a.Stride]
		for r := r0; r < r1; r++ {
			row := w.Data[r*w.Stride : (r+1)*w.Stride]
			var s int32
			for b := 0; b < len(row)/bb; b++ {
				blk := row[b*bb : (b+1)*bb]
				x := q[b*ternary.BlockSize : (b+1)*ternary.BlockSize]
				for j := range 128 {
					lo, hi := int32(blk[j]&15), int32(blk[j]>>4)
					if w.Bits == 6 {
						h := blk[128+j%64]
						lo |= int32(h>>(2*(j/64))&3) << 4
						hi |= int32(h>>(2*(2+j/64))&3) << 4
					}
					s += lo*int32(x[j]) + hi*int32(x[128+j])
				}
			}
			s -= z * a.Sum[t]
			y[t*w.Rows+r] = float32(s) * (w.Scales[r] / a.Scale[t])
		}
	}
}
