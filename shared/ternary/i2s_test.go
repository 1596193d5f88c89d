package ternary

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// i2sRef packs dense ternary values t (row-major) as bitnet.cpp does,
// written straight from quantize_i2_s (src/ggml-bitnet-mad.cpp) and
// quantize_to_i2_s (utils/convert-hf-to-gguf-bitnet.py): codes over the
// flattened tensor, block weight j in byte j%(block/4) at bit 6-2*(j/(block/4)),
// then the float32 scale at byte n/4 and zero padding to n/4+32.
func i2sRef(t []int8, scale float32, block int) []byte {
	n := len(t)
	out := make([]byte, n/4+32)
	q := block / 4
	for i := 0; i < n/block; i++ {
		for j := 0; j < block; j++ {
			out[i*q+j%q] |= byte(t[i*block+j]+1) << (6 - 2*(j/q))
		}
	}
	binary.LittleEndian.PutUint32(out[n/4:], math.Float32bits(scale))
	return out
}

func TestI2SMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 0))
	shapes := []struct{ rows, cols int }{
		{1, 128}, {4, 256}, {3, 640}, {2, 2560}, {5, 3200}, {4, 8640}, {2, 64}, {8, 96}, {16, 8},
	}
	for _, sh := range shapes {
		for _, block := range []int{128, 64} {
			if sh.rows*sh.cols%block != 0 {
				continue
			}
			m, v := randMatrix(t, rng, sh.rows, sh.cols, 0.0625+rng.Float32())
			ref := i2sRef(v, m.Scale, block)
			got, err := DecodeI2S(ref, sh.rows, sh.cols, I2SBlock(block))
			if err != nil {
				t.Fatalf("%dx%d block %d: DecodeI2S: %v", sh.rows, sh.cols, block, err)
			}
			sameMatrix(t, "DecodeI2S", got, m)
			enc, err := m.EncodeI2SBlock(I2SBlock(block))
			if err != nil {
				t.Fatalf("%dx%d block %d: EncodeI2SBlock: %v", sh.rows, sh.cols, block, err)
			}
			if !bytes.Equal(enc, ref) {
				t.Fatalf("%dx%d block %d: EncodeI2SBlock differs from the reference packing", sh.rows, sh.cols, block)
			}
			if block == 128 {
				if enc128, err := m.EncodeI2S(); err != nil || !bytes.Equal(enc128, ref) {
					t.Fatalf("%dx%d: EncodeI2S differs from EncodeI2SBlock(128): %v", sh.rows, sh.cols, err)
				}
			}
		}
	}
}

// TestI2SGolden pins the byte layout with a hand-written block: weight j of a
// 128-block goes to byte j%32, bits 6-2*(j/32).
func TestI2SGolden(t *testing.T) {
	v := make([]int8, 128)
	v[0] = 1    // byte 0 bits 6-7: code 2
	v[33] = -1  // byte 1 bits 4-5: code 0
	v[127] = 1  // byte 31 bits 0-1: code 2
	v[64+5] = 1 // byte 5 bits 2-3: code 2
	m, err := Pack(1, 128, v, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.EncodeI2S()
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte{0x55}, 32)
	want[0] = 0x95 // 10 01 01 01
	want[1] = 0x45 // 01 00 01 01
	want[5] = 0x59 // 01 01 10 01
	want[31] = 0x56
	want = append(want, 0, 0, 0, 0x3f) // float32 0.5
	want = append(want, make([]byte, 28)...)
	if !bytes.Equal(got, want) {
		t.Errorf("EncodeI2S =\n% x\nwant\n% x", got, want)
	}
}

func TestI2SErrors(t *testing.T) {
	ok := i2sRef(make([]int8, 256), 1, 128)
	bad3 := append([]byte(nil), ok...)
	bad3[7] = 0xff
	negScale := append([]byte(nil), ok...)
	binary.LittleEndian.PutUint32(negScale[64:], math.Float32bits(-1))
	nanScale := append([]byte(nil), ok...)
	binary.LittleEndian.PutUint32(nanScale[64:], math.Float32bits(float32(math.NaN())))
	tests := []struct {
		name       string
		data       []byte
		rows, cols int
		block      I2SBlock
		want       string
	}{
		{"short", ok[:95], 2, 128, I2SBlock128, "want rows*cols/4"},
		{"long", append(ok, 0), 2, 128, I2SBlock128, "want rows*cols/4"},
		{"partial block", make([]byte, 3*32/4+32), 3, 32, I2SBlock128, "whole number of 128-weight blocks"},
		{"block size", ok, 2, 128, 32, "block size 32"},
		{"rows", ok, 0, 128, I2SBlock128, "must be positive"},
		{"overflow", ok, math.MaxInt / 2, 4, I2SBlock128, "too large"},
		{"code 3", bad3, 2, 128, I2SBlock128, "invalid code 3"},
		{"negative scale", negScale, 2, 128, I2SBlock128, "non-negative and finite"},
		{"nan scale", nanScale, 2, 128, I2SBlock128, "non-negative and finite"},
	}
	for _, tt := range tests {
		_, err := DecodeI2S(tt.data, tt.rows, tt.cols, tt.block)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
	m, _ := New(1, 96, 1)
	if _, err := m.EncodeI2S(); err == nil {
		t.Errorf("EncodeI2S(1x96): got nil error, want a whole-block error")
	}
}

func FuzzDecodeI2S(f *testing.F) {
	f.Add(i2sRef(make([]int8, 256), 1, 128), 2, 128, true)
	f.Add(i2sRef(make([]int8, 192), 1, 64), 3, 64, false)
	f.Fuzz(func(t *testing.T, data []byte, rows, cols int, x86 bool) {
		if rows <= 0 || cols <= 0 || rows > 64 || cols > 4096 {
			return // bounded per-input cost
		}
		block := I2SBlock64
		if x86 {
			block = I2SBlock128
		}
		m, err := DecodeI2S(data, rows, cols, block)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("decoded matrix invalid: %v", err)
		}
		enc, err := m.EncodeI2SBlock(block)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(enc[:len(enc)-28], data[:len(data)-28]) {
			t.Fatalf("re-encode differs")
		}
	})
}

func BenchmarkDecodeI2S(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	v := randTernary(rng, 2560*6912, 0.5)
	data := i2sRef(v, 1, 128)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeI2S(data, 6912, 2560, I2SBlock128); err != nil {
			b.Fatal(err)
		}
	}
}
