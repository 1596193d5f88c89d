package ternary

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestFromHFPackedDocExample checks the example of transformers'
// unpack_weights docstring: 2x2 packed bytes unpack to an 8x2 matrix.
func TestFromHFPackedDocExample(t *testing.T) {
	packed := []byte{0b10100001, 0b00011000, 0b10010000, 0b00001010}
	want := []int8{0, -1, -1, 1, -1, 1, -1, 1, 1, 0, 0, -1, 1, -1, 1, -1}
	m, err := FromHFPacked(packed, 8, 2, 1)
	if err != nil {
		t.Fatalf("FromHFPacked: %v", err)
	}
	if got := m.Unpack(); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	back, err := m.HFPacked()
	if err != nil {
		t.Fatalf("HFPacked: %v", err)
	}
	if !bytes.Equal(back, packed) {
		t.Fatalf("HFPacked: got %08b, want %08b", back, packed)
	}
}

func TestHFRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := [][2]int{{4, 1}, {4, 127}, {4, 128}, {8, 129}, {4, 255}, {12, 256}, {16, 300}, {20, 640}, {4, 1000}, {64, 2560}}
	for i := 0; i < 20; i++ {
		shapes = append(shapes, [2]int{4 * (1 + rng.IntN(20)), 1 + rng.IntN(1100)})
	}
	for _, sh := range shapes {
		out, in := sh[0], sh[1]
		m, v := randMatrix(t, rng, out, in, 0.5)
		want := hfPackRef(v, out, in)
		got, err := m.HFPacked()
		if err != nil {
			t.Fatalf("%dx%d HFPacked: %v", out, in, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%dx%d HFPacked differs from the reference layout", out, in)
		}
		back, err := FromHFPacked(got, out, in, 0.5)
		if err != nil {
			t.Fatalf("%dx%d FromHFPacked: %v", out, in, err)
		}
		sameMatrix(t, "FromHFPacked(HFPacked)", back, m)
	}
}

func TestHFErrors(t *testing.T) {
	ok := make([]byte, 2*5)
	for i := range ok {
		ok[i] = 0x55
	}
	bad3 := slices.Clone(ok)
	bad3[7] = 0x5d // field 1 of byte [1][2] holds 3
	tests := []struct {
		name    string
		packed  []byte
		out, in int
		want    string
	}{
		{"out not multiple of 4", make([]byte, 10), 10, 5, "multiple of 4"},
		{"zero out", nil, 0, 5, "positive"},
		{"negative in", nil, 8, -1, "positive"},
		{"truncated", ok[:9], 8, 5, "want out/4*in"},
		{"oversized", append(slices.Clone(ok), 0x55), 8, 5, "want out/4*in"},
		{"nil", nil, 8, 5, "want out/4*in"},
		{"code 3", bad3, 8, 5, "byte [1][2] field 1 holds invalid code 3 (weight row 3, col 2)"},
		{"huge", ok, 1 << 62, 1 << 40, "want out/4*in"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := FromHFPacked(tc.packed, tc.out, tc.in, 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got (%v, %v), want error containing %q", m, err, tc.want)
			}
		})
	}
	m, err := New(6, 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.HFPacked(); !errors.Is(err, ErrShape) {
		t.Fatalf("HFPacked of 6 rows: got %v, want ErrShape", err)
	}
	var nilM *Matrix
	if _, err := nilM.HFPacked(); !errors.Is(err, ErrShape) {
		t.Fatalf("HFPacked of nil: got %v, want ErrShape", err)
	}
	m, _ = New(4, 8, 1)
	m.Codes[1] = 0xff
	if _, err := m.HFPacked(); err == nil || !strings.Contains(err.Error(), "code 3") {
		t.Fatalf("HFPacked with code 3: got %v", err)
	}
}

func TestScaleFromHF(t *testing.T) {
	tests := []struct {
		ws    float32
		class string
		want  float32
		err   bool
	}{
		{0.5, HFBitLinear, 2, false},
		{0.5, "", 2, false},
		{1.5, HFAutoBitLinear, 1.5, false},
		{0, HFBitLinear, 0, true},
		{0, HFAutoBitLinear, 0, false},
		{1, "linear", 0, true},
	}
	for _, tc := range tests {
		got, err := ScaleFromHF(tc.ws, tc.class)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ScaleFromHF(%v, %q) = %v, %v; want %v, error %v", tc.ws, tc.class, got, err, tc.want, tc.err)
		}
		if err == nil {
			back, err := ScaleToHF(got, tc.class)
			if err != nil || back != tc.ws {
				t.Errorf("ScaleToHF(%v, %q) = %v, %v; want %v", got, tc.class, back, err, tc.ws)
			}
		}
	}
}
