package ternary

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
)

// # I2_S (bitnet.cpp)
//
// bitnet.cpp's GGUF type I2_S (ggml type 36 in its llama.cpp fork) stores a
// tensor of n = rows*cols weights as n/4 bytes of 2-bit codes c = w+1, then
// one little-endian float32 scale s (W = T*s), then padding to n/4 + gguf.I2SExtra
// bytes. The codes run over the flattened row-major tensor in blocks of
// I2SBlock weights: weight j of a block sits in byte j%(I2SBlock/4) of the
// block's I2SBlock/4 bytes, at bit 6-2*(j/(I2SBlock/4)) (the first quarter
// in the top two bits). Sources: quantize_i2_s in src/ggml-bitnet-mad.cpp
// and quantize_to_i2_s in utils/convert-hf-to-gguf-bitnet.py and
// utils/convert-bitnet-embedding-to-gguf.py (microsoft/BitNet).
//
// Two block sizes exist and the file does not say which one it uses:
//
//   - I2SBlock128 (x86): every file that bitnet.cpp's Python converters
//     write, on any machine, and what llama-quantize writes on x86. The
//     official ggml-model-i2_s.gguf files use it.
//   - I2SBlock64 (arm64): what llama-quantize writes when bitnet.cpp is
//     built for ARM NEON (QK_I2_S 64 since early 2026).
//
// A 128-block is this package's group of 128 weights with the four 2-bit
// fields of every byte in reverse order, so for rows that are whole blocks
// decoding is a byte-table lookup per byte into the kernels' layout.
// bitnet.cpp's kernels read row r at byte r*cols/4 and drop a trailing
// partial block, so bitnet.cpp itself computes correctly only when cols is a
// multiple of the block (128 on x86, 64 on ARM); this package reads and
// writes any shape whose element count is a multiple of the block.

// I2SBlock is the number of weights in one I2_S code block.
type I2SBlock int

// I2_S block sizes (see the package doc).
const (
	I2SBlock128 I2SBlock = 128
	I2SBlock64  I2SBlock = 64
)

// revFields reverses the order of the four 2-bit fields in every byte of
// src into dst (same length): it maps the I2_S bytes of 128-blocks to Matrix
// group bytes and back.
func revFields(dst, src []byte) {
	const nib, pair = 0x0f0f0f0f0f0f0f0f, 0x3333333333333333
	i := 0
	for ; i+8 <= len(src); i += 8 {
		x := binary.LittleEndian.Uint64(src[i:])
		x = x>>4&nib | x&nib<<4
		x = x>>2&pair | x&pair<<2
		binary.LittleEndian.PutUint64(dst[i:], x)
	}
	for ; i < len(src); i++ {
		x := src[i]
		x = x>>4 | x<<4
		dst[i] = x>>2&0x33 | x&0x33<<2
	}
}

// i2sCheck validates the shape and the buffer length of an I2_S tensor.
func i2sCheck(n, rows, cols int, block I2SBlock) error {
	if block != I2SBlock128 && block != I2SBlock64 {
		return fmt.Errorf("%w: I2_S block size %d (want 128 or 64)", ErrShape, block)
	}
	if rows <= 0 || cols <= 0 {
		return fmt.Errorf("%w: I2_S rows=%d cols=%d must be positive", ErrShape, rows, cols)
	}
	if rows > math.MaxInt/cols || rows*cols > math.MaxInt-4*gguf.I2SExtra {
		return fmt.Errorf("%w: I2_S rows=%d cols=%d too large", ErrShape, rows, cols)
	}
	elems := rows * cols
	if elems%int(block) != 0 {
		return fmt.Errorf("%w: I2_S tensor of %d x %d = %d weights is not a whole number of %d-weight blocks", ErrShape, rows, cols, elems, block)
	}
	if want := elems/4 + gguf.I2SExtra; n != want {
		return fmt.Errorf("%w: I2_S buffer has %d bytes, want rows*cols/4 + %d = %d", ErrShape, n, gguf.I2SExtra, want)
	}
	return nil
}

// DecodeI2S converts a bitnet.cpp I2_S tensor of rows x cols (ne1 x ne0)
// written with the given block size to a Matrix. Code 3 and a negative or
// non-finite scale are errors.
func DecodeI2S(data []byte, rows, cols int, block I2SBlock) (*Matrix, error) {
	if err := i2sCheck(len(data), rows, cols, block); err != nil {
		return nil, err
	}
	codes := data[:rows*cols/4]
	scale := math.Float32frombits(binary.LittleEndian.Uint32(data[len(codes):]))
	if !(scale >= 0) || math.IsInf(float64(scale), 0) {
		return nil, fmt.Errorf("ternary: I2_S scale %v must be non-negative and finite", scale)
	}
	if bytesHave3(codes) {
		i, f := first3(codes)
		return nil, fmt.Errorf("ternary: I2_S code byte %d field %d holds invalid code 3", i, 3-f)
	}
	m, err := alloc(rows, cols, scale)
	if err != nil {
		return nil, err
	}
	if block == I2SBlock128 && cols%GroupSize == 0 {
		// Rows are whole blocks: one table lookup per byte.
		rb := cols / 4
		for r := 0; r < rows; r++ {
			dst := m.Codes[r*m.Stride : (r+1)*m.Stride]
			revFields(dst[:rb], codes[r*rb:(r+1)*rb])
			fill55(dst[rb:])
		}
		return m, nil
	}
	fill55(m.Codes)
	q := int(block) / 4 // bytes per block
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			i := r*cols + c
			j := i % int(block)
			code := codes[i/int(block)*q+j%q] >> (6 - 2*(j/q)) & 3
			g, in := c/GroupSize, c%GroupSize
			p := &m.Codes[r*m.Stride+g*GroupBytes+in%GroupBytes]
			sh := 2 * (in / GroupBytes)
			*p = *p&^(3<<sh) | code<<sh
		}
	}
	return m, nil
}

// EncodeI2S returns m as a bitnet.cpp I2_S tensor with 128-weight blocks
// (the layout every bitnet.cpp converter writes): rows*cols/4 code bytes,
// the float32 Scale, and zero padding to gguf.I2SExtra bytes. Rows*Cols must be a
// multiple of 128.
func (m *Matrix) EncodeI2S() ([]byte, error) { return m.EncodeI2SBlock(I2SBlock128) }

// EncodeI2SBlock is EncodeI2S with the given block size: I2SBlock64 is
// the layout llama-quantize of an ARM build of bitnet.cpp writes (what
// model.WithI2SBlock reads back). Rows*Cols must be a multiple of it.
func (m *Matrix) EncodeI2SBlock(block I2SBlock) ([]byte, error) {
	if err := m.checkShape(); err != nil {
		return nil, err
	}
	if err := m.checkCodes(); err != nil {
		return nil, err
	}
	if !(m.Scale >= 0) || math.IsInf(float64(m.Scale), 0) {
		return nil, fmt.Errorf("ternary: I2_S scale %v must be non-negative and finite", m.Scale)
	}
	rows, cols := m.Rows, m.Cols
	if err := i2sCheck(rows*cols/4+gguf.I2SExtra, rows, cols, block); err != nil {
		return nil, err
	}
	out := make([]byte, rows*cols/4+gguf.I2SExtra)
	codes := out[:rows*cols/4]
	if block == I2SBlock128 && cols%GroupSize == 0 {
		rb := cols / 4
		for r := 0; r < rows; r++ {
			revFields(codes[r*rb:(r+1)*rb], m.Codes[r*m.Stride:r*m.Stride+rb])
		}
	} else {
		q := int(block) / 4
		for r := 0; r < rows; r++ {
			for c := 0; c < cols; c++ {
				i := r*cols + c
				j := i % int(block)
				codes[i/int(block)*q+j%q] |= m.Code(r, c) << (6 - 2*(j/q))
			}
		}
	}
	binary.LittleEndian.PutUint32(out[len(codes):], math.Float32bits(m.Scale))
	return out, nil
}
