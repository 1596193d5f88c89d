package ternary

import (
	"encoding/binary"
	"fmt"
)

// DecodeTQ2_0 converts a GGUF TQ2_0 tensor of rows x cols (ne1 x ne0; cols a
// multiple of 256) to a Matrix. TQ2_0's qs bytes have the Matrix byte order,
// so this is a copy plus checks: code 3, blocks whose nonzero scales differ,
// and blocks with scale 0 but nonzero codes are errors.
func DecodeTQ2_0(data []byte, rows, cols int) (*Matrix, error) {
	const typ = "TQ2_0"
	bpr, err := tqCheck(len(data), rows, cols, TQ2_0Bytes, typ)
	if err != nil {
		return nil, err
	}
	m, err := alloc(rows, cols, 0)
	if err != nil {
		return nil, err
	}
	ss := scaleSet{typ: typ}
	var bad uint64
	for r := 0; r < rows; r++ {
		row := m.Codes[r*m.Stride : (r+1)*m.Stride]
		src := data[r*bpr*TQ2_0Bytes : (r+1)*bpr*TQ2_0Bytes]
		for b := 0; b < bpr; b++ {
			blk := src[b*TQ2_0Bytes : (b+1)*TQ2_0Bytes]
			dst := row[b*64 : b*64+64]
			for k := 0; k < 64; k += 8 {
				v := binary.LittleEndian.Uint64(blk[k:])
				bad |= v & (v >> 1)
				binary.LittleEndian.PutUint64(dst[k:], v)
			}
			d := binary.LittleEndian.Uint16(blk[64:])
			if d != ss.bits || !ss.set {
				if err := ss.add(d, r, b, func() bool { return allZero(dst) }); err != nil {
					return nil, err
				}
			}
		}
	}
	if bad&lowBits != 0 {
		i, f := first3(m.Codes)
		r, k := i/m.Stride, i%m.Stride
		return nil, fmt.Errorf("ternary: TQ2_0 row %d block %d qs byte %d field %d holds invalid code 3", r, k/64, k%64, f)
	}
	m.Scale = ss.scale()
	return m, nil
}

// EncodeTQ2_0 returns m as GGUF TQ2_0 blocks (Cols must be a multiple of 256)
// with d = fp16(Scale). Blocks whose weights are all 0 get d = 0, as llama.cpp's
// quantize_row_tq2_0_ref writes for T*Scale, so the bytes match its output.
func (m *Matrix) EncodeTQ2_0() ([]byte, error) {
	d, err := m.encodeScale("TQ2_0")
	if err != nil {
		return nil, err
	}
	bpr := m.Cols / BlockSize
	out := make([]byte, m.Rows*bpr*TQ2_0Bytes)
	for r := 0; r < m.Rows; r++ {
		row := m.Codes[r*m.Stride : (r+1)*m.Stride]
		dst := out[r*bpr*TQ2_0Bytes : (r+1)*bpr*TQ2_0Bytes]
		for b := 0; b < bpr; b++ {
			codes := row[b*64 : b*64+64]
			blk := dst[b*TQ2_0Bytes : (b+1)*TQ2_0Bytes]
			copy(blk, codes)
			bd := d
			if allZero(codes) {
				bd = 0
			}
			binary.LittleEndian.PutUint16(blk[64:], bd)
		}
	}
	return out, nil
}
