package gguf

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/half"
)

func TestQ8_0Reference(t *testing.T) {
	// Block 0: amax 127 gives d = 1, so q = roundf(x) with ties away from zero.
	// Block 1: all zero gives d = 0 and q = 0.
	x := make([]float32, 64)
	in := []float32{127, 63.5, -63.5, 0.5, -0.5, 1.5, 2.5, -2.5, 0.49, -126.6}
	want := []int8{127, 64, -64, 1, -1, 2, 3, -3, 0, -127}
	copy(x, in)
	got, err := EncodeFloat32(Q8_0, x)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 68 {
		t.Fatalf("len = %d, want 68", len(got))
	}
	if d := uint16(got[0]) | uint16(got[1])<<8; d != 0x3c00 {
		t.Errorf("block 0 d = %#04x, want 0x3c00 (1.0)", d)
	}
	for i, w := range want {
		if q := int8(got[2+i]); q != w {
			t.Errorf("q[%d] for x=%v = %d, want %d", i, in[i], q, w)
		}
	}
	for i, b := range got[34:] {
		if b != 0 {
			t.Errorf("zero block byte %d = %d, want 0", i, b)
		}
	}
}

func TestQ8_0Scale(t *testing.T) {
	// d is stored as fp16 of amax/127, and q uses the unrounded 1/d.
	x := make([]float32, 32)
	for i := range x {
		x[i] = float32(i) * 0.01
	}
	got, _ := EncodeFloat32(Q8_0, x)
	d := float32(0.31) / 127
	if h := uint16(got[0]) | uint16(got[1])<<8; h != half.ToFloat16(d) {
		t.Errorf("d bits = %#04x, want %#04x", h, half.ToFloat16(d))
	}
	id := 1 / d
	for i, v := range x {
		want := int8(math.Round(float64(v * id)))
		if q := int8(got[2+i]); q != want {
			t.Errorf("q[%d] = %d, want %d", i, q, want)
		}
	}
}

func TestCodecRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 256)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	tests := []struct {
		typ    Type
		relTol float64 // max error relative to the block's absmax
	}{
		{F32, 0}, {F16, 1e-3}, {BF16, 8e-3}, {Q8_0, 1.0/254 + 1e-3},
	}
	for _, tt := range tests {
		enc, err := EncodeFloat32(tt.typ, x)
		if err != nil {
			t.Fatalf("%s: Encode: %v", tt.typ, err)
		}
		if want, _ := tt.typ.RowSize(256); uint64(len(enc)) != want {
			t.Errorf("%s: %d bytes, want %d", tt.typ, len(enc), want)
		}
		dec, err := DecodeFloat32(tt.typ, enc, len(x))
		if err != nil {
			t.Fatalf("%s: Decode: %v", tt.typ, err)
		}
		for b := 0; b < len(x); b += 32 {
			var amax float64
			for _, v := range x[b : b+32] {
				amax = math.Max(amax, math.Abs(float64(v)))
			}
			for i := b; i < b+32; i++ {
				if e := math.Abs(float64(dec[i] - x[i])); e > tt.relTol*amax {
					t.Fatalf("%s: x[%d] = %v decoded as %v (error %g > %g)", tt.typ, i, x[i], dec[i], e, tt.relTol*amax)
				}
			}
		}
		// Encoding a decoded vector again is stable.
		enc2, _ := EncodeFloat32(tt.typ, dec)
		if !reflect.DeepEqual(enc, enc2) {
			t.Errorf("%s: re-encoding the decoded values changed the bytes", tt.typ)
		}
	}
}

func TestCodecErrors(t *testing.T) {
	if _, err := EncodeFloat32(Q8_0, make([]float32, 33)); err == nil {
		t.Errorf("Encode Q8_0 of 33: got nil error")
	}
	if _, err := EncodeFloat32(TQ2_0, make([]float32, 256)); err == nil {
		t.Errorf("Encode TQ2_0: got nil error")
	}
	if _, err := DecodeFloat32(F32, make([]byte, 7), 2); err == nil {
		t.Errorf("Decode F32 with short data: got nil error")
	}
	if _, err := DecodeFloat32(Q8_0, make([]byte, 34), 16); err == nil {
		t.Errorf("Decode Q8_0 of 16: got nil error")
	}
	if _, err := DecodeFloat32(F16, nil, -1); err == nil {
		t.Errorf("Decode with n = -1: got nil error")
	}
	if got, err := DecodeFloat32(F16, nil, 0); err != nil || len(got) != 0 {
		t.Errorf("Decode of 0 elements = %v, %v", got, err)
	}
}

// TestQ8_0MatchesGGML checks 200 blocks (random scales from 1e-8 to 1e4,
// exact halves, integers, tiny values) against the output of ggml's
// quantize_row_q8_0_ref (ggml commit d99724f2), stored in testdata.
func TestQ8_0MatchesGGML(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "q8_0_ref.f32"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "q8_0_ref.q8"))
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, len(raw)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	got, err := EncodeFloat32(Q8_0, x)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d bytes, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			b := i / 34
			t.Fatalf("block %d byte %d = %#02x, want %#02x (inputs %v)", b, i%34, got[i], want[i], x[b*32:b*32+32])
		}
	}
}

// TestDecodeQ6KMatchesGGML compares Q6_K decoding with ggml's
// dequantize_row_q6_K: 8 rows of 256 that bitnet.cpp's llama-quantize
// (microsoft/BitNet 01eb415) wrote as Q6_K and then dequantized to F32.
func TestDecodeQ6KMatchesGGML(t *testing.T) {
	q, err := os.ReadFile(filepath.Join("testdata", "q6_k_ref.q6k"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join("testdata", "q6_k_ref.f32"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := DecodeFloat32(F32, raw, len(raw)/4)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeFloat32(Q6_K, q, len(want))
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("element %d: got %v, want %v", i, got[i], want[i])
		}
	}
	if _, err := DecodeFloat32(Q6_K, q[:209], 256); err == nil {
		t.Errorf("short Q6_K data: got nil error")
	}
}
