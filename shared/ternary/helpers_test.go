package ternary

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// randTernary returns rows*cols values in {-1,0,1}; zeroShare of them 0.
func randTernary(rng *rand.Rand, n int, zeroShare float64) []int8 {
	t := make([]int8, n)
	for i := range t {
		if rng.Float64() < zeroShare {
			continue
		}
		t[i] = int8(rng.IntN(2)*2 - 1)
	}
	return t
}

// randMatrix packs a random ternary matrix.
func randMatrix(t testing.TB, rng *rand.Rand, rows, cols int, scale float32) (*Matrix, []int8) {
	t.Helper()
	v := randTernary(rng, rows*cols, rng.Float64())
	m, err := Pack(rows, cols, v, scale)
	if err != nil {
		t.Fatalf("Pack(%d, %d): %v", rows, cols, err)
	}
	return m, v
}

// sameMatrix fails unless a and b have identical shape, codes and scale.
func sameMatrix(t testing.TB, what string, got, want *Matrix) {
	t.Helper()
	if got.Rows != want.Rows || got.Cols != want.Cols || got.Stride != want.Stride {
		t.Fatalf("%s: got %dx%d stride %d, want %dx%d stride %d", what, got.Rows, got.Cols, got.Stride, want.Rows, want.Cols, want.Stride)
	}
	if got.Scale != want.Scale {
		t.Fatalf("%s: got scale %v, want %v", what, got.Scale, want.Scale)
	}
	if !bytes.Equal(got.Codes, want.Codes) {
		for i := range got.Codes {
			if got.Codes[i] != want.Codes[i] {
				t.Fatalf("%s: code byte %d (row %d) = %#02x, want %#02x", what, i, i/got.Stride, got.Codes[i], want.Codes[i])
			}
		}
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("%s: Validate: %v", what, err)
	}
}

// hfPackRef is the Hugging Face layout written straight from its definition.
func hfPackRef(t []int8, out, in int) []byte {
	q := out / 4
	p := make([]byte, q*in)
	for r := 0; r < out; r++ {
		for c := 0; c < in; c++ {
			p[(r%q)*in+c] |= byte(t[r*in+c]+1) << (2 * (r / q))
		}
	}
	return p
}
