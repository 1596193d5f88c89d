// Package ternary holds BitNet b1.58 ternary weight matrices (values in
// {-1, 0, +1} with one float scale per tensor) in the packed layout that the
// compute kernels read, and converts them to and from the byte formats that
// checkpoints use (Hugging Face packed uint8, GGUF TQ2_0 and TQ1_0).
//
// # Layout
//
// A Matrix stores each row as 2-bit codes c = w+1 in {0, 1, 2}. Rows are
// padded to a multiple of BlockSize weights (padding codes are 1, weight 0)
// and are Stride = paddedCols/4 bytes apart. Within a row, every group of
// GroupSize = 128 weights occupies 32 bytes: bits 2n..2n+1 of byte m of group
// g hold the code of weight g*128 + 32n + m. This is the byte order of GGUF's
// TQ2_0 blocks, so a SIMD kernel turns 32 bytes into 4 vectors of 32
// consecutive codes with one shift and one mask each, and TQ2_0 loads are copies.
//
// # Formats
//
// FromHFPacked and HFPacked convert the Hugging Face packed layout of BitNet
// checkpoints (transformers' integrations/bitnet.py pack_weights and
// unpack_weights): uint8 [out/4, in] where bits 2i..2i+1 of byte [r][c] hold
// w+1 of weight row r + i*out/4, column c. out must be a multiple of 4: the
// BitLinear buffer has out//4 rows and unpack_weights returns 4*rows rows, so
// other shapes cannot be loaded by transformers (pack_weights would pad the
// last fields with code 0, i.e. weight -1).
//
// DecodeTQ2_0, EncodeTQ2_0, DecodeTQ1_0 and EncodeTQ1_0 follow llama.cpp's
// ggml-quants.c (quantize_row_tq{1,2}_0_ref, dequantize_row_tq{1,2}_0) byte
// for byte. A tensor has one scale: every block with a nonzero fp16 d must
// carry the same d, and blocks whose weights are all 0 may carry d = 0 (the
// encoders write 0 there, as llama.cpp's quantizer does for T*Scale).
//
// # Scale of pre-quantised Hugging Face checkpoints
//
// What the one-element weight_scale means depends on
// quantization_config.linear_class (transformers, src/transformers/
// integrations/bitnet.py):
//
//   - "bitlinear" (BitLinear, the default of BitNetQuantConfig): forward
//     computes post_quant_process(y, weight_scale, input_scale) =
//     y / (input_scale*weight_scale) with y = int8(x) . T and input_scale =
//     127/max|x|, so the checkpoint stores 1/s: Scale = 1/weight_scale.
//   - "autobitlinear" (AutoBitLinear, used by microsoft/bitnet-b1.58-2B-4T
//     with quantization_mode "offline"): forward computes
//     F.linear(ActQuant(x), T) * weight_scale, so weight_scale is s itself.
//     mlx-lm's BitLinear agrees (invert_weight_scales=False for this model).
//     Note llama.cpp's convert_hf_to_gguf.py dequant_bitnet always divides
//     ("The scale is inverted"), which is right only for "bitlinear".
//
// ScaleFromHF and ScaleToHF apply this rule.
//
// # Absmean
//
// Quantize ternarises float weights exactly as transformers' WeightQuant and
// llama.cpp's BitnetModel.weight_quant do in fp32: it multiplies by the fp32
// reciprocal of the clamped mean (W * (1/s), not W / s) and rounds half to
// even (torch.round); see Quantize.
package ternary

import (
	"errors"
	"fmt"
)

const (
	// GroupSize is the number of weights packed into one 32-byte group.
	GroupSize = 128
	// GroupBytes is the size of one group in bytes.
	GroupBytes = GroupSize / 4
	// BlockSize is the row padding unit (one GGUF TQ block).
	BlockSize = 256
)

// Matrix is a rows x cols ternary matrix W ~= T * Scale.
type Matrix struct {
	Rows, Cols int
	// Stride is the number of bytes between rows: PaddedCols(Cols)/4.
	Stride int
	// Codes holds Rows*Stride bytes in the layout described in the package doc.
	Codes []byte
	// Scale is the per-tensor scale s: W ~= T * s.
	Scale float32
	// Trits optionally holds the same codes in the 1.6-bit layout (see
	// PackTrits; Rows*TritStride(Stride) bytes), which the kernels read
	// for one-token products when the plan says it pays; nil when absent.
	Trits []byte
}

// ErrShape reports dimensions that do not fit.
var ErrShape = errors.New("ternary: bad shape")

// PaddedCols returns cols rounded up to a multiple of BlockSize.
func PaddedCols(cols int) int {
	return (cols + BlockSize - 1) / BlockSize * BlockSize
}

// New returns a zero matrix (all codes 1) of the given shape.
func New(rows, cols int, scale float32) (*Matrix, error) {
	if rows <= 0 || cols <= 0 {
		return nil, fmt.Errorf("%w: rows=%d cols=%d must be positive", ErrShape, rows, cols)
	}
	stride := PaddedCols(cols) / 4
	if int64(rows) > (int64(1)<<46)/int64(stride) {
		return nil, fmt.Errorf("%w: rows=%d cols=%d too large", ErrShape, rows, cols)
	}
	codes := make([]byte, rows*stride)
	fill55(codes) // four codes of 1: weight 0
	return &Matrix{Rows: rows, Cols: cols, Stride: stride, Codes: codes, Scale: scale}, nil
}

// Pack builds a matrix from dense row-major ternary values t (len rows*cols,
// each in {-1, 0, 1}).
func Pack(rows, cols int, t []int8, scale float32) (*Matrix, error) {
	m, err := New(rows, cols, scale)
	if err != nil {
		return nil, err
	}
	if len(t) != rows*cols {
		return nil, fmt.Errorf("%w: got %d values, want rows*cols = %d*%d = %d", ErrShape, len(t), rows, cols, rows*cols)
	}
	for r := 0; r < rows; r++ {
		if err := m.SetRow(r, t[r*cols:(r+1)*cols]); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// SetRow overwrites row r with the ternary values t (len Cols).
func (m *Matrix) SetRow(r int, t []int8) error {
	if r < 0 || r >= m.Rows {
		return fmt.Errorf("%w: row %d out of range [0,%d)", ErrShape, r, m.Rows)
	}
	if len(t) != m.Cols {
		return fmt.Errorf("%w: row has %d values, want %d", ErrShape, len(t), m.Cols)
	}
	row := m.Codes[r*m.Stride : (r+1)*m.Stride]
	for i := range row {
		row[i] = 0x55
	}
	for c, v := range t {
		if v < -1 || v > 1 {
			return fmt.Errorf("ternary: value %d at row %d col %d is not in {-1,0,1}", v, r, c)
		}
		g, in := c/GroupSize, c%GroupSize
		n, b := in/GroupBytes, in%GroupBytes
		p := &row[g*GroupBytes+b]
		*p = *p&^(3<<(2*n)) | byte(v+1)<<(2*n)
	}
	return nil
}

// Code returns the 2-bit code (w+1) of element (r, c).
func (m *Matrix) Code(r, c int) byte {
	g, in := c/GroupSize, c%GroupSize
	n, b := in/GroupBytes, in%GroupBytes
	return m.Codes[r*m.Stride+g*GroupBytes+b] >> (2 * n) & 3
}

// Row appends the ternary values of row r to dst and returns it.
func (m *Matrix) Row(dst []int8, r int) []int8 {
	for c := 0; c < m.Cols; c++ {
		dst = append(dst, int8(m.Code(r, c))-1)
	}
	return dst
}

// Unpack returns the dense row-major ternary values.
func (m *Matrix) Unpack() []int8 {
	t := make([]int8, 0, m.Rows*m.Cols)
	for r := 0; r < m.Rows; r++ {
		t = m.Row(t, r)
	}
	return t
}

// Validate checks the matrix invariants: shape, buffer size and that every code
// is in {0, 1, 2}.
func (m *Matrix) Validate() error {
	if m == nil {
		return fmt.Errorf("%w: nil matrix", ErrShape)
	}
	if m.Rows <= 0 || m.Cols <= 0 || m.Stride != PaddedCols(m.Cols)/4 {
		return fmt.Errorf("%w: rows=%d cols=%d stride=%d", ErrShape, m.Rows, m.Cols, m.Stride)
	}
	if len(m.Codes) != m.Rows*m.Stride {
		return fmt.Errorf("%w: %d code bytes, want %d", ErrShape, len(m.Codes), m.Rows*m.Stride)
	}
	if err := m.checkTrits(); err != nil {
		return err
	}
	if !bytesHave3(m.Codes) {
		return nil
	}
	i, _ := first3(m.Codes)
	return fmt.Errorf("ternary: invalid code 3 at byte %d", i)
}
