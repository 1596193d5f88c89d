package gguf

import (
	"fmt"
	"math"
)

// Type is a ggml tensor element type.
type Type uint32

// ggml tensor types (ggml.h). Numbers 4, 5, 31-33, 37 and 38 were removed
// upstream and are rejected. 36 is bitnet.cpp's I2_S (upstream llama.cpp
// removed its IQ4_NL_4_4 there); bitnet.cpp's I8_S (37) is an activation type
// and its TL1/TL2 (38, 39) are per-model lookup-table layouts that no file
// format describes, so they are not read (39 is MXFP4 upstream).
const (
	F32     Type = 0
	F16     Type = 1
	Q4_0    Type = 2
	Q4_1    Type = 3
	Q5_0    Type = 6
	Q5_1    Type = 7
	Q8_0    Type = 8
	Q8_1    Type = 9
	Q2_K    Type = 10
	Q3_K    Type = 11
	Q4_K    Type = 12
	Q5_K    Type = 13
	Q6_K    Type = 14
	Q8_K    Type = 15
	IQ2_XXS Type = 16
	IQ2_XS  Type = 17
	IQ3_XXS Type = 18
	IQ1_S   Type = 19
	IQ4_NL  Type = 20
	IQ3_S   Type = 21
	IQ2_S   Type = 22
	IQ4_XS  Type = 23
	I8      Type = 24
	I16     Type = 25
	I32     Type = 26
	I64     Type = 27
	F64     Type = 28
	IQ1_M   Type = 29
	BF16    Type = 30
	TQ1_0   Type = 34
	TQ2_0   Type = 35
	I2_S    Type = 36 // bitnet.cpp: 2-bit ternary codes + one float32 scale per tensor
	MXFP4   Type = 39
	NVFP4   Type = 40
	Q1_0    Type = 41
	Q2_0    Type = 42
)

const qkK = 256 // elements in a k-quant super-block

type typeInfo struct {
	name      string
	blockSize int // elements per block
	typeSize  int // bytes per block
}

var typeInfos = map[Type]typeInfo{
	F32:     {"F32", 1, 4},
	F16:     {"F16", 1, 2},
	Q4_0:    {"Q4_0", 32, 2 + 16},
	Q4_1:    {"Q4_1", 32, 2 + 2 + 16},
	Q5_0:    {"Q5_0", 32, 2 + 4 + 16},
	Q5_1:    {"Q5_1", 32, 2 + 2 + 4 + 16},
	Q8_0:    {"Q8_0", 32, 2 + 32},
	Q8_1:    {"Q8_1", 32, 2 + 2 + 32}, // fp16 d and s, as in ggml-common.h (some readers list 40)
	Q2_K:    {"Q2_K", qkK, 2*2 + qkK/16 + qkK/4},
	Q3_K:    {"Q3_K", qkK, 2 + qkK/4 + qkK/8 + 12},
	Q4_K:    {"Q4_K", qkK, 2*2 + 12 + qkK/2},
	Q5_K:    {"Q5_K", qkK, 2*2 + 12 + qkK/8 + qkK/2},
	Q6_K:    {"Q6_K", qkK, 2 + qkK/16 + 3*qkK/4},
	Q8_K:    {"Q8_K", qkK, 4 + qkK + qkK/16*2},
	IQ2_XXS: {"IQ2_XXS", qkK, 2 + qkK/4},
	IQ2_XS:  {"IQ2_XS", qkK, 2 + qkK/4 + qkK/32},
	IQ3_XXS: {"IQ3_XXS", qkK, 2 + qkK/4 + qkK/8},
	IQ1_S:   {"IQ1_S", qkK, 2 + qkK/8 + qkK/16},
	IQ4_NL:  {"IQ4_NL", 32, 2 + 16},
	IQ3_S:   {"IQ3_S", qkK, 2 + qkK/4 + qkK/8 + qkK/32 + 4},
	IQ2_S:   {"IQ2_S", qkK, 2 + qkK/4 + qkK/16},
	IQ4_XS:  {"IQ4_XS", qkK, 2 + 2 + qkK/2 + qkK/64},
	I8:      {"I8", 1, 1},
	I16:     {"I16", 1, 2},
	I32:     {"I32", 1, 4},
	I64:     {"I64", 1, 8},
	F64:     {"F64", 1, 8},
	IQ1_M:   {"IQ1_M", qkK, qkK/8 + qkK/16 + qkK/32},
	BF16:    {"BF16", 1, 2},
	TQ1_0:   {"TQ1_0", qkK, 2 + 4*13},
	TQ2_0:   {"TQ2_0", qkK, 2 + 64},
	I2_S:    {"I2_S", 1, 1}, // sized per tensor: see TensorSize
	MXFP4:   {"MXFP4", 32, 1 + 16},
	NVFP4:   {"NVFP4", 64, 4 + 32},
	Q1_0:    {"Q1_0", 128, 2 + 16},
	Q2_0:    {"Q2_0", 64, 2 + 16},
}

// String returns the ggml name ("F32", "Q8_0", "TQ2_0", ...).
func (t Type) String() string {
	if info, ok := typeInfos[t]; ok {
		return info.name
	}
	return fmt.Sprintf("Type(%d)", uint32(t))
}

// Valid reports whether t is a ggml type this package knows the layout of.
func (t Type) Valid() bool { _, ok := typeInfos[t]; return ok }

// BlockSize returns the elements per block (1 for plain types, 0 if unknown).
func (t Type) BlockSize() int { return typeInfos[t].blockSize }

// TypeSize returns the bytes per block (0 if unknown).
func (t Type) TypeSize() int { return typeInfos[t].typeSize }

// I2SExtra is the bytes an I2_S tensor holds after its codes: the float32
// scale and padding to 32 bytes (bitnet.cpp's ggml_nbytes: n/4 + 32).
const I2SExtra = 32

// RowSize returns the bytes of a row of ne0 elements, or an error if the
// type is unknown or ne0 is not a whole number of blocks. I2_S has no row
// size of its own (its scale follows the whole tensor): use TensorSize.
func (t Type) RowSize(ne0 uint64) (uint64, error) {
	info, ok := typeInfos[t]
	if !ok {
		return 0, fmt.Errorf("unknown ggml type %d", uint32(t))
	}
	if t == I2_S {
		return 0, fmt.Errorf("I2_S is sized per tensor (codes, then one scale), not per row")
	}
	if ne0%uint64(info.blockSize) != 0 {
		return 0, fmt.Errorf("row length %d is not a multiple of the %s block size %d", ne0, info.name, info.blockSize)
	}
	blocks := ne0 / uint64(info.blockSize)
	if blocks > math.MaxInt64/uint64(info.typeSize) {
		return 0, fmt.Errorf("row length %d overflows", ne0)
	}
	return blocks * uint64(info.typeSize), nil
}

// TensorSize returns the bytes of a tensor of type t and dims (ne0 first),
// checking that rows are whole blocks and that nothing overflows int64. An
// I2_S tensor of n elements takes n/4 bytes of 2-bit codes plus I2SExtra
// (bitnet.cpp); n must be a multiple of 4 so that no code is cut off.
func TensorSize(t Type, dims []uint64) (uint64, error) {
	if len(dims) > MaxDims {
		return 0, fmt.Errorf("%d dims, more than %d", len(dims), MaxDims)
	}
	if t == I2_S {
		n := uint64(1)
		for _, d := range dims {
			if d != 0 && n > math.MaxInt64/d {
				return 0, fmt.Errorf("dims %v overflow", dims)
			}
			n *= d
		}
		if n%4 != 0 {
			return 0, fmt.Errorf("I2_S needs a multiple of 4 elements, have %d", n)
		}
		return n/4 + I2SExtra, nil
	}
	ne0 := uint64(1)
	if len(dims) > 0 {
		ne0 = dims[0]
	}
	size, err := t.RowSize(ne0)
	if err != nil {
		return 0, err
	}
	elems := ne0
	for i := 1; i < len(dims); i++ {
		d := dims[i]
		if d != 0 && (elems > math.MaxInt64/d || size > math.MaxInt64/d) {
			return 0, fmt.Errorf("dims %v overflow", dims)
		}
		elems *= d
		size *= d
	}
	if elems > math.MaxInt64 || size > math.MaxInt64 {
		return 0, fmt.Errorf("dims %v overflow", dims)
	}
	return size, nil
}

// MaxDims is GGML_MAX_DIMS.
const MaxDims = 4

// ValueType is the type tag of a metadata value.
type ValueType uint32

// Metadata value types.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"}

func (v ValueType) String() string {
	if int(v) < len(valueTypeNames) {
		return valueTypeNames[v]
	}
	return fmt.Sprintf("ValueType(%d)", uint32(v))
}

// size returns the encoded size of a scalar of this type; 0 for strings,
// arrays and unknown types.
func (v ValueType) size() int {
	switch v {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}
