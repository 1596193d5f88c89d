package model

import (
	"math"
	"testing"
)

func TestRelu2Mul(t *testing.T) {
	gate := []float32{-2, float32(math.Copysign(0, -1)), 0, 0.5, 3, float32(math.Inf(-1))}
	up := []float32{1, 1, 1, 2, -1, 1}
	want := []float32{0, 0, 0, 0.5, -9, 0}
	relu2Mul(gate, up)
	for i := range want {
		if gate[i] != want[i] {
			t.Errorf("element %d: got %g, want %g", i, gate[i], want[i])
		}
	}
}
