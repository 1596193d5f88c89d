package ternary

import (
	"encoding/binary"
	"fmt"
	"sync"
)

// TQ1_0 packs 5 trits per byte: the trits t0..t4 (t0 most significant) of
// q = sum t_n*3^(4-n) < 243 are stored as ceil(q*256/243), so trit n is
// recovered as (uint8(b*3^n)*3)>>8. A block of 256 weights holds, in element
// order: qs[0:32] elements m+32n (n = 0..4), qs[32:48] elements 160+m+16n, and
// qh[0:4] elements 240+j+4n (n = 0..3, the fifth trit is 0).

// tq1Entry is what one byte of qs or qh contributes to the Matrix layout.
type tq1Entry struct {
	lo  byte // trits t0..t3 as four 2-bit codes (t_n at bits 2n)
	t4  byte // trit t4
	hiA byte // t0<<2 | t2<<4 | t4<<6: group 1 byte m for qs[32+m]
	hiB byte // t1<<2 | t3<<4: group 1 byte 16+m for qs[32+m]
	bad byte // bit 0: not a canonical qs byte; bit 1: not a canonical qh byte
}

// tq1Tables holds the decode entries and the encoder's base-3 lookups.
type tq1Tables struct {
	dec  [256]tq1Entry
	val4 [256]uint8 // fields f0..f3 of a code byte read as base 3, f0 first
	enc  [243]byte  // ceil(q*256/243)
}

var tq1 = sync.OnceValue(func() *tq1Tables {
	t := new(tq1Tables)
	for q := range t.enc {
		t.enc[q] = byte((q*256 + 242) / 243)
	}
	pow3 := [5]byte{1, 3, 9, 27, 81}
	for b := 0; b < 256; b++ {
		var tr [5]byte
		for n := range tr {
			tr[n] = byte(uint16(byte(b)*pow3[n]) * 3 >> 8)
		}
		e := &t.dec[b]
		e.lo = tr[0] | tr[1]<<2 | tr[2]<<4 | tr[3]<<6
		e.t4 = tr[4]
		e.hiA = tr[0]<<2 | tr[2]<<4 | tr[4]<<6
		e.hiB = tr[1]<<2 | tr[3]<<4
		q := int(tr[0])*81 + int(tr[1])*27 + int(tr[2])*9 + int(tr[3])*3 + int(tr[4])
		if t.enc[q] != byte(b) {
			e.bad = 3
		} else if tr[4] != 0 {
			e.bad = 2
		}
		t.val4[b] = uint8((b&3)*27 + (b>>2&3)*9 + (b>>4&3)*3 + b>>6&3)
	}
	return t
})

// DecodeTQ1_0 converts a GGUF TQ1_0 tensor of rows x cols (ne1 x ne0; cols a
// multiple of 256) to a Matrix. Bytes that llama.cpp's quantizer cannot
// produce (13 of the 256 values of a qs byte; qh bytes whose fifth trit is not
// 0), blocks whose nonzero scales differ and blocks with scale 0 but nonzero
// weights are errors.
func DecodeTQ1_0(data []byte, rows, cols int) (*Matrix, error) {
	const typ = "TQ1_0"
	bpr, err := tqCheck(len(data), rows, cols, TQ1_0Bytes, typ)
	if err != nil {
		return nil, err
	}
	m, err := alloc(rows, cols, 0)
	if err != nil {
		return nil, err
	}
	t := tq1()
	ss := scaleSet{typ: typ}
	for r := 0; r < rows; r++ {
		row := m.Codes[r*m.Stride : (r+1)*m.Stride]
		src := data[r*bpr*TQ1_0Bytes : (r+1)*bpr*TQ1_0Bytes]
		for b := 0; b < bpr; b++ {
			blk := src[b*TQ1_0Bytes : (b+1)*TQ1_0Bytes]
			if bad := decodeTQ1Block(t, row[b*64:b*64+64], blk); bad != 0 {
				return nil, tq1ByteError(t, blk, r, b)
			}
			d := binary.LittleEndian.Uint16(blk[52:])
			if d != ss.bits || !ss.set {
				codes := row[b*64 : b*64+64]
				if err := ss.add(d, r, b, func() bool { return allZero(codes) }); err != nil {
					return nil, err
				}
			}
		}
	}
	m.Scale = ss.scale()
	return m, nil
}

// decodeTQ1Block writes the 64 Matrix code bytes of one block and returns
// nonzero when a byte is not canonical.
func decodeTQ1Block(t *tq1Tables, dst, blk []byte) byte {
	qs, qh := blk[:48:48], blk[48:52:52]
	g0, g1 := dst[:32:32], dst[32:64:64]
	var bad byte
	for k := 0; k < 32; k++ {
		e := &t.dec[qs[k]]
		g0[k] = e.lo
		g1[k] = e.t4
		bad |= e.bad
	}
	bad &= 1
	var h [4]byte
	for j := range h {
		e := &t.dec[qh[j]]
		h[j] = e.lo
		bad |= e.bad >> 1
	}
	for k := 0; k < 16; k++ {
		e := &t.dec[qs[32+k]]
		bad |= e.bad & 1
		g1[16+k] = g1[16+k] | e.hiB | (h[k&3]>>(2*(k>>2))&3)<<6
		g1[k] |= e.hiA
	}
	return bad
}

// tq1ByteError describes the first non-canonical byte of a block.
func tq1ByteError(t *tq1Tables, blk []byte, r, b int) error {
	for k, x := range blk[:48] {
		if t.dec[x].bad&1 != 0 {
			return fmt.Errorf("ternary: TQ1_0 row %d block %d qs[%d] = %d is not a valid base-3 byte", r, b, k, x)
		}
	}
	for k, x := range blk[48:52] {
		if t.dec[x].bad&2 != 0 {
			return fmt.Errorf("ternary: TQ1_0 row %d block %d qh[%d] = %d is not a valid base-3 byte", r, b, k, x)
		}
	}
	return fmt.Errorf("ternary: TQ1_0 row %d block %d has an invalid byte", r, b)
}

// EncodeTQ1_0 returns m as GGUF TQ1_0 blocks (Cols must be a multiple of 256)
// with d = fp16(Scale), byte for byte as llama.cpp's quantize_row_tq1_0_ref
// encodes T*Scale (all-zero blocks get d = 0).
func (m *Matrix) EncodeTQ1_0() ([]byte, error) {
	d, err := m.encodeScale("TQ1_0")
	if err != nil {
		return nil, err
	}
	t := tq1()
	bpr := m.Cols / BlockSize
	out := make([]byte, m.Rows*bpr*TQ1_0Bytes)
	for r := 0; r < m.Rows; r++ {
		row := m.Codes[r*m.Stride : (r+1)*m.Stride]
		dst := out[r*bpr*TQ1_0Bytes : (r+1)*bpr*TQ1_0Bytes]
		for b := 0; b < bpr; b++ {
			codes := row[b*64 : b*64+64]
			blk := dst[b*TQ1_0Bytes : (b+1)*TQ1_0Bytes]
			encodeTQ1Block(t, blk, codes)
			bd := d
			if allZero(codes) {
				bd = 0
			}
			binary.LittleEndian.PutUint16(blk[52:], bd)
		}
	}
	return out, nil
}

// encodeTQ1Block writes qs and qh of one block from its 64 Matrix code bytes
// (no code 3).
func encodeTQ1Block(t *tq1Tables, blk, codes []byte) {
	qs, qh := blk[:48:48], blk[48:52:52]
	g0, g1 := codes[:32:32], codes[32:64:64]
	for k := 0; k < 32; k++ {
		qs[k] = t.enc[int(t.val4[g0[k]])*3+int(g1[k]&3)]
	}
	for k := 0; k < 16; k++ {
		a, c := g1[k], g1[16+k]
		q := int(a>>2&3)*81 + int(c>>2&3)*27 + int(a>>4&3)*9 + int(c>>4&3)*3 + int(a>>6&3)
		qs[32+k] = t.enc[q]
	}
	for j := 0; j < 4; j++ {
		q := int(g1[16+j]>>6)*27 + int(g1[20+j]>>6)*9 + int(g1[24+j]>>6)*3 + int(g1[28+j]>>6)
		qh[j] = t.enc[q*3]
	}
}
