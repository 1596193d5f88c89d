package ternary

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	m, err := New(3, 300, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, c := range m.Codes {
		if c != 0x55 {
			t.Fatalf("New: code byte %#x, want 0x55", c)
		}
	}
	m.Codes[200] = 0x7d
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "invalid code 3 at byte 200") {
		t.Fatalf("got %v, want invalid code 3 at byte 200", err)
	}
}

// TestTranspose4 checks the 2-bit transpose against its definition and that
// it is an involution.
func TestTranspose4(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for i := 0; i < 1000; i++ {
		in := [4]uint64{rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64()}
		var out [4]uint64
		out[0], out[1], out[2], out[3] = transpose4(in[0], in[1], in[2], in[3])
		for lane := 0; lane < 8; lane++ {
			for n := 0; n < 4; n++ {
				for f := 0; f < 4; f++ {
					got := out[f] >> (8*lane + 2*n) & 3
					want := in[n] >> (8*lane + 2*f) & 3
					if got != want {
						t.Fatalf("lane %d: field %d of word %d = %d, want %d", lane, n, f, got, want)
					}
				}
			}
		}
		a, b, c, d := transpose4(out[0], out[1], out[2], out[3])
		if [4]uint64{a, b, c, d} != in {
			t.Fatal("transpose4 is not an involution")
		}
	}
}
