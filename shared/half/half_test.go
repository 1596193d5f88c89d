package half

import (
	"math"
	"testing"
)

func TestFloat16RoundTripAllBits(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := FromFloat16(h)
		if f != f { // NaN
			if g := ToFloat16(f); FromFloat16(g) == FromFloat16(g) {
				t.Fatalf("NaN %#04x: got %#04x, want a NaN", h, g)
			}
			continue
		}
		if got := ToFloat16(f); got != h {
			t.Fatalf("ToFloat16(FromFloat16(%#04x) = %v): got %#04x, want %#04x", h, f, got, h)
		}
	}
}

func TestToFloat16Rounding(t *testing.T) {
	tests := []struct {
		in   float32
		want uint16
	}{
		{0, 0},
		{1, 0x3c00},
		{-2, 0xc000},
		{65504, 0x7bff},
		{65520, 0x7c00},             // rounds up to inf
		{1 + 1.0/2048, 0x3c00},      // tie, even stays
		{1 + 3.0/2048, 0x3c02},      // tie, odd rounds up
		{5.960464477539063e-08, 1},  // smallest subnormal
		{2.9802322387695312e-08, 0}, // half of it: tie to even (0)
		{float32(math.Inf(-1)), 0xfc00},
		{0.333251953125, 0x3555},
	}
	for _, tt := range tests {
		if got := ToFloat16(tt.in); got != tt.want {
			t.Errorf("ToFloat16(%v): got %#04x, want %#04x", tt.in, got, tt.want)
		}
	}
}

func TestBFloat16(t *testing.T) {
	tests := []struct {
		in   float32
		want uint16
	}{
		{1, 0x3f80},
		{-2, 0xc000},
		{math.Float32frombits(0x3f808000), 0x3f80}, // tie to even
		{math.Float32frombits(0x3f818000), 0x3f82}, // tie, odd rounds up
	}
	for _, tt := range tests {
		if got := ToBFloat16(tt.in); got != tt.want {
			t.Errorf("ToBFloat16(%v): got %#04x, want %#04x", tt.in, got, tt.want)
		}
		if got := FromBFloat16(tt.want); ToBFloat16(got) != tt.want {
			t.Errorf("bf16 round trip %#04x failed", tt.want)
		}
	}
}
