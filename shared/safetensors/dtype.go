package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/bitnet-mesh/bitnet-mesh/shared/half"
)

// DType is a safetensors element type name as it appears in the header.
type DType string

// The element types this package knows.
const (
	BOOL   DType = "BOOL"
	U8     DType = "U8"
	I8     DType = "I8"
	F8E5M2 DType = "F8_E5M2"
	F8E4M3 DType = "F8_E4M3"
	F8E8M0 DType = "F8_E8M0"
	I16    DType = "I16"
	U16    DType = "U16"
	F16    DType = "F16"
	BF16   DType = "BF16"
	I32    DType = "I32"
	U32    DType = "U32"
	F32    DType = "F32"
	F64    DType = "F64"
	I64    DType = "I64"
	U64    DType = "U64"
)

var dtypeSizes = map[DType]int{
	BOOL: 1, U8: 1, I8: 1, F8E5M2: 1, F8E4M3: 1, F8E8M0: 1,
	I16: 2, U16: 2, F16: 2, BF16: 2,
	I32: 4, U32: 4, F32: 4,
	F64: 8, I64: 8, U64: 8,
}

// dtypeRank is the declaration order of the reference implementation's
// Dtype enum; its writer lays tensors out by decreasing rank, then name.
var dtypeRank = map[DType]int{
	BOOL: 0, U8: 4, I8: 5, F8E5M2: 6, F8E4M3: 7, F8E8M0: 8,
	I16: 9, U16: 10, F16: 11, BF16: 12, I32: 13, U32: 14, F32: 15,
	F64: 17, I64: 18, U64: 19,
}

// Size returns the bytes per element, or 0 for an unknown dtype.
func (d DType) Size() int { return dtypeSizes[d] }

// Valid reports whether d is a dtype this package knows.
func (d DType) Valid() bool { return dtypeSizes[d] != 0 }

// Tensor is one named tensor. Data holds the little-endian elements in
// row-major order; for tensors from a File it aliases the file mapping.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// NumElements returns the product of the shape (1 for a scalar). It returns
// -1 if a dim is negative or the product overflows int.
func (t Tensor) NumElements() int {
	n, ok := numElements(t.Shape)
	if !ok {
		return -1
	}
	return n
}

func numElements(shape []int) (int, bool) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d != 0 && n > math.MaxInt/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// Float32 converts an F32, F16, BF16 or F64 tensor into a new []float32.
func (t Tensor) Float32() ([]float32, error) {
	if err := t.checkFloat(); err != nil {
		return nil, err
	}
	out := make([]float32, t.NumElements())
	t.decode(out)
	return out, nil
}

// Float32Into is Float32 into a caller-provided slice of exactly
// NumElements values, for loaders that reuse one buffer.
func (t Tensor) Float32Into(dst []float32) error {
	if err := t.checkFloat(); err != nil {
		return err
	}
	if n := t.NumElements(); len(dst) != n {
		return fmt.Errorf("safetensors: tensor %q: destination holds %d values, want %d", t.Name, len(dst), n)
	}
	t.decode(dst)
	return nil
}

func (t Tensor) checkFloat() error {
	switch t.DType {
	case F32, F16, BF16, F64:
	default:
		return fmt.Errorf("safetensors: tensor %q: cannot convert dtype %s to float32 (want F32, F16, BF16 or F64)", t.Name, t.DType)
	}
	n := t.NumElements()
	if n < 0 || n > len(t.Data)/t.DType.Size() || len(t.Data) != n*t.DType.Size() {
		return fmt.Errorf("safetensors: tensor %q: dtype %s shape %v does not match %d data bytes", t.Name, t.DType, t.Shape, len(t.Data))
	}
	return nil
}

// decode converts t.Data into out; the sizes were checked by checkFloat.
func (t Tensor) decode(out []float32) {
	b := t.Data
	le := binary.LittleEndian
	switch t.DType {
	case F32:
		b = b[:4*len(out)]
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
	case F16:
		b = b[:2*len(out)]
		if len(out) < 1<<18 {
			for i := range out {
				out[i] = half.FromFloat16(le.Uint16(b[2*i:]))
			}
			return
		}
		// A lookup table beats the branchy conversion for large tensors.
		table := make([]float32, 1<<16)
		for h := range table {
			table[h] = half.FromFloat16(uint16(h))
		}
		for i := range out {
			out[i] = table[le.Uint16(b[2*i:])]
		}
	case BF16:
		b = b[:2*len(out)]
		for i := range out {
			out[i] = math.Float32frombits(uint32(le.Uint16(b[2*i:])) << 16)
		}
	case F64:
		b = b[:8*len(out)]
		for i := range out {
			out[i] = float32(math.Float64frombits(le.Uint64(b[8*i:])))
		}
	}
}
