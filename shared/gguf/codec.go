package gguf

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/bitnet-mesh/bitnet-mesh/shared/half"
)

// qk8 is the Q8_0 block length.
const qk8 = 32

// DecodeFloat32 converts the first n elements of data, of type typ (F32, F16,
// BF16, Q8_0 or Q6_K), into a new []float32. Q6_K (llama.cpp's
// dequantize_row_q6_K) is read only: bitnet.cpp and llama.cpp files may
// store the token embedding in it (llama-quantize --token-embedding-type).
func DecodeFloat32(typ Type, data []byte, n int) ([]float32, error) {
	if n < 0 {
		return nil, fmt.Errorf("gguf: decode %s: negative element count %d", typ, n)
	}
	size, err := typ.RowSize(uint64(n))
	if err != nil {
		return nil, fmt.Errorf("gguf: decode %s: %w", typ, err)
	}
	if uint64(len(data)) < size {
		return nil, fmt.Errorf("gguf: decode %s: %d elements need %d bytes, have %d", typ, n, size, len(data))
	}
	out := make([]float32, n)
	le := binary.LittleEndian
	switch typ {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(data[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = half.FromFloat16(le.Uint16(data[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = half.FromBFloat16(le.Uint16(data[2*i:]))
		}
	case Q8_0:
		for b := 0; b < n/qk8; b++ {
			blk := data[b*(2+qk8):]
			d := half.FromFloat16(le.Uint16(blk))
			for j, q := range blk[2 : 2+qk8] {
				out[b*qk8+j] = d * float32(int8(q))
			}
		}
	case Q6_K:
		for b := 0; b < n/qkK; b++ {
			decodeQ6K(out[b*qkK:(b+1)*qkK], data[b*Q6_K.TypeSize():])
		}
	default:
		return nil, fmt.Errorf("gguf: decode: type %s is not F32, F16, BF16, Q8_0 or Q6_K", typ)
	}
	return out, nil
}

// decodeQ6K dequantizes one Q6_K block (ql[128] low nibbles, qh[64] high
// bit pairs, int8 scales[16], fp16 d) into y[256], in ggml's order of
// operations (d*scale, then times the 6-bit value minus 32).
func decodeQ6K(y []float32, blk []byte) {
	ql, qh, sc := blk[:128], blk[128:192], blk[192:208]
	d := half.FromFloat16(binary.LittleEndian.Uint16(blk[208:]))
	for n := 0; n < qkK; n += 128 {
		for l := 0; l < 32; l++ {
			is := l / 16
			q1 := int8(ql[l]&0xF|(qh[l]>>0&3)<<4) - 32
			q2 := int8(ql[l+32]&0xF|(qh[l]>>2&3)<<4) - 32
			q3 := int8(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
			q4 := int8(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
			y[n+l] = d * float32(int8(sc[is])) * float32(q1)
			y[n+l+32] = d * float32(int8(sc[is+2])) * float32(q2)
			y[n+l+64] = d * float32(int8(sc[is+4])) * float32(q3)
			y[n+l+96] = d * float32(int8(sc[is+6])) * float32(q4)
		}
		ql, qh, sc = ql[64:], qh[32:], sc[8:]
	}
}

// EncodeFloat32 converts x to typ (F32, F16, BF16 or Q8_0). F16 and BF16
// round to nearest even; Q8_0 matches ggml's quantize_row_q8_0_ref: per block
// of 32, d = amax/127 stored as fp16, q = roundf(x/d) with ties away from zero
// (computed with the unrounded d, as ggml does).
func EncodeFloat32(typ Type, x []float32) ([]byte, error) {
	size, err := typ.RowSize(uint64(len(x)))
	if err != nil {
		return nil, fmt.Errorf("gguf: encode %s: %w", typ, err)
	}
	out := make([]byte, size)
	le := binary.LittleEndian
	switch typ {
	case F32:
		for i, v := range x {
			le.PutUint32(out[4*i:], math.Float32bits(v))
		}
	case F16:
		for i, v := range x {
			le.PutUint16(out[2*i:], half.ToFloat16(v))
		}
	case BF16:
		for i, v := range x {
			le.PutUint16(out[2*i:], half.ToBFloat16(v))
		}
	case Q8_0:
		for b := 0; b < len(x)/qk8; b++ {
			quantizeQ8Block(out[b*(2+qk8):], x[b*qk8:(b+1)*qk8])
		}
	default:
		return nil, fmt.Errorf("gguf: encode: type %s is not F32, F16, BF16 or Q8_0", typ)
	}
	return out, nil
}

func quantizeQ8Block(dst []byte, x []float32) {
	var amax float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax = a
		}
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	binary.LittleEndian.PutUint16(dst, half.ToFloat16(d))
	for j, v := range x {
		p := float32(v * id)                          // round the product to float32 as C does
		dst[2+j] = byte(int8(math.Round(float64(p)))) // roundf: ties away from zero
	}
}
