package ternary

import (
	"encoding/binary"
	"fmt"
)

// The 1.6-bit layout (Matrix.Trits): 5 trits per byte, as GGUF TQ1_0
// packs them, arranged for SIMD decoding. A row of PaddedCols(Cols) = 4*Stride
// weights is cut into groups of 320 (a last group may hold 64, 128, 192
// or 256: Kp mod 320 is a multiple of 64). Group g occupies 64 bytes; byte
// j holds the codes c_n = w+1 of weights 320g + 64n + j for n = 0..4 (n
// below the group's planes) as q = sum c_n 3^(4-n) (c_0 most significant,
// missing planes 0), stored as ceil(q*256/243). Then
// c_n = ((b * 3^n mod 256) * 3) >> 8, which SIMD kernels compute on 16-bit
// lanes, and plane n of a group pairs with 64 consecutive activations.

// TritGroup is the number of weights in one 64-byte group of Trits.
const TritGroup = 320

// TritLayout returns the groups of a row, the full groups among them and
// the planes (64-weight slices, 1-4) of the last partial group (0 when
// none), for rows of stride code bytes (Matrix.Stride).
func TritLayout(stride int) (groups, full, planes int) {
	kp := 4 * stride
	full, planes = kp/TritGroup, kp%TritGroup/64
	groups = full
	if planes > 0 {
		groups++
	}
	return groups, full, planes
}

// TritStride returns the bytes of one row of Trits for rows of stride code bytes.
func TritStride(stride int) int {
	g, _, _ := TritLayout(stride)
	return 64 * g
}

// PackTrits fills m.Trits (Rows*TritStride(Stride) bytes) from m.Codes.
// Codes stay as they are: kernels choose the layout per operation class.
func (m *Matrix) PackTrits() error {
	if err := m.checkShape(); err != nil {
		return err
	}
	if err := m.checkCodes(); err != nil {
		return err
	}
	ts := TritStride(m.Stride)
	groups, _, planes := TritLayout(m.Stride)
	t := tq1()
	m.Trits = make([]byte, m.Rows*ts)
	for r := range m.Rows {
		row := m.Codes[r*m.Stride : (r+1)*m.Stride]
		dst := m.Trits[r*ts : (r+1)*ts]
		for g := range groups {
			np := 5
			if g == groups-1 && planes > 0 {
				np = planes
			}
			// q[j] = sum_n c(64n+j) 3^(4-n), eight bytes per uint64 (each
			// stays below 243: no carry between bytes): plane n is two runs
			// of 32 weights, each in 32 consecutive code bytes at one 2-bit
			// field (weight e sits in byte e/128*32 + e%32, field e%128/32).
			var acc [8]uint64
			for n := range 5 {
				for h := range 2 {
					a := (*[4]uint64)(acc[4*h:])
					if n >= np {
						for i := range a {
							a[i] *= 3
						}
						continue
					}
					e := TritGroup*g + 64*n + 32*h
					src := row[e/GroupSize*GroupBytes:][:32]
					sh := 2 * (e % GroupSize / GroupBytes)
					for i := range a {
						a[i] = 3*a[i] + binary.LittleEndian.Uint64(src[8*i:])>>sh&0x0303030303030303
					}
				}
			}
			var q [64]byte
			for i, v := range acc {
				binary.LittleEndian.PutUint64(q[8*i:], v)
			}
			for j, v := range q {
				dst[64*g+j] = t.enc[v]
			}
		}
	}
	return nil
}

// TritCode returns the code (w+1) of element (r, c) read from m.Trits.
func (m *Matrix) TritCode(r, c int) byte {
	g, in := c/TritGroup, c%TritGroup
	n, j := in/64, in%64
	b := m.Trits[r*TritStride(m.Stride)+64*g+j]
	pow := [5]uint16{1, 3, 9, 27, 81}
	return byte(uint16(byte(uint16(b)*pow[n])) * 3 >> 8)
}

// checkTrits validates m.Trits against the shape (nil is valid: no 1.6-bit copy).
func (m *Matrix) checkTrits() error {
	if m.Trits == nil {
		return nil
	}
	if want := m.Rows * TritStride(m.Stride); len(m.Trits) != want {
		return fmt.Errorf("%w: %d trit bytes, want %d", ErrShape, len(m.Trits), want)
	}
	return nil
}
