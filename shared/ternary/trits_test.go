package ternary

import (
	"math/rand/v2"
	"testing"
)

func TestPackTrits(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	for _, cols := range []int{1, 64, 255, 256, 300, 320, 640, 2560, 6912, 1000} {
		rows := 3
		vals := make([]int8, rows*cols)
		for i := range vals {
			vals[i] = int8(rng.IntN(3)) - 1
		}
		m, err := Pack(rows, cols, vals, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.PackTrits(); err != nil {
			t.Fatal(err)
		}
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
		kp := 4 * m.Stride
		for r := range rows {
			for c := range kp {
				if got, want := m.TritCode(r, c), m.Code(r, c); got != want {
					t.Fatalf("cols %d: element (%d, %d) trit code %d, want %d", cols, r, c, got, want)
				}
			}
		}
		g, full, planes := TritLayout(m.Stride)
		if full*TritGroup+planes*64 != kp || TritStride(m.Stride) != 64*g {
			t.Errorf("cols %d: layout %d groups (%d full, %d planes) for %d weights", cols, g, full, planes, kp)
		}
	}
	m, _ := New(2, 256, 1)
	m.Trits = make([]byte, 5)
	if err := m.Validate(); err == nil {
		t.Error("Validate with a short Trits: got nil error")
	}
}
