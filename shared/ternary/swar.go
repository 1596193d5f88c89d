package ternary

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Bit patterns used by the SWAR (SIMD within a register) helpers.
const (
	lowBits  = 0x5555555555555555 // bit 0 of every 2-bit field
	zeroCode = 0x5555555555555555 // eight bytes of four code-1 (weight 0) fields
)

// bytesHave3 reports whether any 2-bit field of b holds code 3.
func bytesHave3(b []byte) bool {
	var acc uint64
	for len(b) >= 8 {
		v := binary.LittleEndian.Uint64(b)
		acc |= v & (v >> 1)
		b = b[8:]
	}
	for _, x := range b {
		acc |= uint64(x & (x >> 1))
	}
	return acc&lowBits != 0
}

// first3 returns the index of the first byte of b that holds code 3 and the
// field (0..3) that holds it, or -1, -1.
func first3(b []byte) (int, int) {
	for i, x := range b {
		for n := 0; n < 4; n++ {
			if x>>(2*n)&3 == 3 {
				return i, n
			}
		}
	}
	return -1, -1
}

// allZero reports whether every code in b is 1 (weight 0).
func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != zeroCode {
			return false
		}
		b = b[8:]
	}
	for _, x := range b {
		if x != 0x55 {
			return false
		}
	}
	return true
}

// fill55 sets every byte of b to 0x55 (four zero weights).
func fill55(b []byte) {
	if len(b) == 0 {
		return
	}
	b[0] = 0x55
	for n := 1; n < len(b); n *= 2 {
		copy(b[n:], b[:n])
	}
}

// alloc returns a matrix whose Codes are NOT initialised: the caller writes
// every byte, padding included. It applies the same limits as New.
func alloc(rows, cols int, scale float32) (*Matrix, error) {
	if rows <= 0 || cols <= 0 {
		return nil, fmt.Errorf("%w: rows=%d cols=%d must be positive", ErrShape, rows, cols)
	}
	if cols > math.MaxInt-BlockSize {
		return nil, fmt.Errorf("%w: rows=%d cols=%d too large", ErrShape, rows, cols)
	}
	stride := PaddedCols(cols) / 4
	if int64(rows) > (int64(1)<<46)/int64(stride) {
		return nil, fmt.Errorf("%w: rows=%d cols=%d too large", ErrShape, rows, cols)
	}
	return &Matrix{Rows: rows, Cols: cols, Stride: stride, Codes: make([]byte, rows*stride), Scale: scale}, nil
}

// checkCodes returns an error naming the first code 3 of m, if any.
func (m *Matrix) checkCodes() error {
	if !bytesHave3(m.Codes) {
		return nil
	}
	i, _ := first3(m.Codes)
	r, b := i/m.Stride, i%m.Stride
	return fmt.Errorf("ternary: invalid code 3 in row %d (code byte %d of the row)", r, b)
}

// checkShape validates the matrix header and buffer size (not the codes).
func (m *Matrix) checkShape() error {
	if m == nil {
		return fmt.Errorf("%w: nil matrix", ErrShape)
	}
	if m.Rows <= 0 || m.Cols <= 0 || m.Cols > math.MaxInt-BlockSize || m.Stride != PaddedCols(m.Cols)/4 {
		return fmt.Errorf("%w: rows=%d cols=%d stride=%d", ErrShape, m.Rows, m.Cols, m.Stride)
	}
	if m.Rows > len(m.Codes)/m.Stride || len(m.Codes) != m.Rows*m.Stride {
		return fmt.Errorf("%w: %d code bytes, want rows*stride = %d*%d", ErrShape, len(m.Codes), m.Rows, m.Stride)
	}
	return nil
}
