package ternary

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Hugging Face linear classes (quantization_config.linear_class) of
// pre-quantised BitNet checkpoints; they differ in what weight_scale means.
const (
	// HFBitLinear is transformers' BitLinear, the default class: it divides
	// the product by weight_scale, so the checkpoint stores 1/s.
	HFBitLinear = "bitlinear"
	// HFAutoBitLinear is transformers' AutoBitLinear (BitNet b1.58 2B4T): in
	// offline mode it multiplies the product by weight_scale, which is s.
	HFAutoBitLinear = "autobitlinear"
)

// ScaleFromHF converts the one-element weight_scale of a pre-quantised Hugging
// Face checkpoint into Matrix.Scale (W ~= T*Scale) for the given
// quantization_config.linear_class ("" means transformers' default,
// "bitlinear"). See the package doc for the reference.
func ScaleFromHF(weightScale float32, linearClass string) (float32, error) {
	if math.IsNaN(float64(weightScale)) || math.IsInf(float64(weightScale), 0) {
		return 0, fmt.Errorf("ternary: weight_scale %v is not finite", weightScale)
	}
	switch linearClass {
	case HFAutoBitLinear:
		return weightScale, nil
	case HFBitLinear, "":
		if weightScale == 0 {
			return 0, fmt.Errorf("ternary: weight_scale 0 cannot be inverted (linear_class %q divides by it)", HFBitLinear)
		}
		return 1 / weightScale, nil
	}
	return 0, fmt.Errorf("ternary: unknown linear_class %q (want %q or %q)", linearClass, HFBitLinear, HFAutoBitLinear)
}

// ScaleToHF is the inverse of ScaleFromHF: the weight_scale to store for a
// matrix with the given Scale.
func ScaleToHF(scale float32, linearClass string) (float32, error) {
	// Both mappings are their own inverse.
	return ScaleFromHF(scale, linearClass)
}

// hfCheck validates the shape of a Hugging Face packed tensor [out/4, in].
func hfCheck(n, out, in int) error {
	if out <= 0 || in <= 0 {
		return fmt.Errorf("%w: HF packed out=%d in=%d must be positive", ErrShape, out, in)
	}
	if out%4 != 0 {
		// transformers' BitLinear buffer has out//4 rows and unpack_weights
		// yields 4*rows rows, so such a tensor cannot load there; pack_weights
		// would also fill the missing fields with code 0 (weight -1).
		return fmt.Errorf("%w: HF packed layout needs out (%d) to be a multiple of 4", ErrShape, out)
	}
	if q := out / 4; q > math.MaxInt/in || q*in != n {
		return fmt.Errorf("%w: HF packed buffer has %d bytes, want out/4*in = %d*%d", ErrShape, n, out/4, in)
	}
	return nil
}

// transpose4 transposes, independently in each of the eight byte lanes, the
// 4x4 matrix of 2-bit fields whose row n is word n: afterwards field i of
// word n holds what field n of word i held. It is its own inverse.
func transpose4(a, b, c, d uint64) (uint64, uint64, uint64, uint64) {
	const nib, pair = 0x0F0F0F0F0F0F0F0F, 0x3333333333333333
	t := (a>>4 ^ c) & nib
	a ^= t << 4
	c ^= t
	t = (b>>4 ^ d) & nib
	b ^= t << 4
	d ^= t
	t = (a>>2 ^ b) & pair
	a ^= t << 2
	b ^= t
	t = (c>>2 ^ d) & pair
	c ^= t << 2
	d ^= t
	return a, b, c, d
}

// FromHFPacked converts a Hugging Face packed BitNet weight (uint8 of shape
// [out/4, in], row-major) to a Matrix of out x in with the given Scale (use
// ScaleFromHF for a checkpoint's weight_scale). Field i (bits 2i..2i+1) of
// byte [r][c] holds w+1 of weight row r + i*out/4, column c. out must be a
// multiple of 4; a field holding 3 is an error.
func FromHFPacked(packed []byte, out, in int, scale float32) (*Matrix, error) {
	if err := hfCheck(len(packed), out, in); err != nil {
		return nil, err
	}
	m, err := alloc(out, in, scale)
	if err != nil {
		return nil, err
	}
	q := out / 4
	full := in / GroupSize // groups whose 128 columns all exist
	tail := full * GroupBytes
	var bad uint64
	for r := 0; r < q; r++ {
		src := packed[r*in : (r+1)*in]
		d0 := m.Codes[r*m.Stride : (r+1)*m.Stride]
		d1 := m.Codes[(r+q)*m.Stride : (r+q+1)*m.Stride]
		d2 := m.Codes[(r+2*q)*m.Stride : (r+2*q+1)*m.Stride]
		d3 := m.Codes[(r+3*q)*m.Stride : (r+3*q+1)*m.Stride]
		for g := 0; g < full; g++ {
			s := src[g*GroupSize : (g+1)*GroupSize]
			o := g * GroupBytes
			for k := 0; k < GroupBytes; k += 8 {
				a := binary.LittleEndian.Uint64(s[k:])
				b := binary.LittleEndian.Uint64(s[32+k:])
				c := binary.LittleEndian.Uint64(s[64+k:])
				d := binary.LittleEndian.Uint64(s[96+k:])
				bad |= a&(a>>1) | b&(b>>1) | c&(c>>1) | d&(d>>1)
				a, b, c, d = transpose4(a, b, c, d)
				binary.LittleEndian.PutUint64(d0[o+k:], a)
				binary.LittleEndian.PutUint64(d1[o+k:], b)
				binary.LittleEndian.PutUint64(d2[o+k:], c)
				binary.LittleEndian.PutUint64(d3[o+k:], d)
			}
		}
		if tail < m.Stride {
			dst := [4][]byte{d0[tail:], d1[tail:], d2[tail:], d3[tail:]}
			for i := range dst {
				fill55(dst[i])
			}
			for c := full * GroupSize; c < in; c++ {
				v := src[c]
				bad |= uint64(v & (v >> 1))
				k := c - full*GroupSize
				n, b := k/GroupBytes, k%GroupBytes
				for i := range dst {
					p := &dst[i][b]
					*p = *p&^(3<<(2*n)) | (v>>(2*i)&3)<<(2*n)
				}
			}
		}
	}
	if bad&lowBits != 0 {
		i, f := first3(packed)
		return nil, fmt.Errorf("ternary: HF packed byte [%d][%d] field %d holds invalid code 3 (weight row %d, col %d)", i/in, i%in, f, i/in+f*q, i%in)
	}
	return m, nil
}

// HFPacked returns the Hugging Face packed form of m (see FromHFPacked); the
// scale is not part of it (see ScaleToHF). Rows must be a multiple of 4.
func (m *Matrix) HFPacked() ([]byte, error) {
	if err := m.checkShape(); err != nil {
		return nil, err
	}
	out, in := m.Rows, m.Cols
	if err := hfCheck(out/4*in, out, in); err != nil {
		return nil, err
	}
	if err := m.checkCodes(); err != nil {
		return nil, err
	}
	q := out / 4
	packed := make([]byte, q*in)
	full := in / GroupSize
	for r := 0; r < q; r++ {
		dst := packed[r*in : (r+1)*in]
		s0 := m.Codes[r*m.Stride : (r+1)*m.Stride]
		s1 := m.Codes[(r+q)*m.Stride : (r+q+1)*m.Stride]
		s2 := m.Codes[(r+2*q)*m.Stride : (r+2*q+1)*m.Stride]
		s3 := m.Codes[(r+3*q)*m.Stride : (r+3*q+1)*m.Stride]
		for g := 0; g < full; g++ {
			d := dst[g*GroupSize : (g+1)*GroupSize]
			o := g * GroupBytes
			for k := 0; k < GroupBytes; k += 8 {
				a, b, c, e := transpose4(
					binary.LittleEndian.Uint64(s0[o+k:]),
					binary.LittleEndian.Uint64(s1[o+k:]),
					binary.LittleEndian.Uint64(s2[o+k:]),
					binary.LittleEndian.Uint64(s3[o+k:]))
				binary.LittleEndian.PutUint64(d[k:], a)
				binary.LittleEndian.PutUint64(d[32+k:], b)
				binary.LittleEndian.PutUint64(d[64+k:], c)
				binary.LittleEndian.PutUint64(d[96+k:], e)
			}
		}
		for c := full * GroupSize; c < in; c++ {
			dst[c] = m.Code(r, c) | m.Code(r+q, c)<<2 | m.Code(r+2*q, c)<<4 | m.Code(r+3*q, c)<<6
		}
	}
	return packed, nil
}
