package ternary

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// refQuantize is transformers' WeightQuant in fp32, element by element.
func refQuantize(w []float32) ([]int8, float32) {
	var sum float64
	for _, v := range w {
		sum += math.Abs(float64(v))
	}
	s := max(float32(sum/float64(len(w))), 1e-5)
	inv := 1 / s
	t := make([]int8, len(w))
	for i, v := range w {
		r := math.RoundToEven(float64(v * inv))
		t[i] = int8(max(-1, min(1, r)))
	}
	return t, 1 / inv
}

func TestQuantizeKnownAnswers(t *testing.T) {
	tests := []struct {
		name  string
		w     []float32
		want  []int8
		scale float32
	}{
		// mean |W| = 1: ties at +-0.5 and +-2.5 round to even (0 and +-2 -> +-1).
		{"ties", []float32{0.5, -0.5, 1.5, -1.5, 0.25, 0.75, -0.75, 0, 2.5, -1.75}, []int8{0, 0, 1, -1, 0, 1, -1, 0, 1, -1}, 1},
		// mean |W| = 2: 1.0/2 = 0.5 rounds to 0, 1.25/2 rounds to 1.
		{"mean 2", []float32{1, -1.25, 4, -1.75}, []int8{0, -1, 1, -1}, 2},
		// all zero: the mean clamps to 1e-5.
		{"zero", []float32{0, 0, 0, 0}, []int8{0, 0, 0, 0}, 1 / (1 / float32(1e-5))},
		// tiny weights below the clamp: W*1e5 decides.
		{"tiny", []float32{4e-6, -6e-6, 1e-6, 0}, []int8{0, -1, 0, 0}, 1 / (1 / float32(1e-5))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Quantize(1, len(tc.w), tc.w)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Unpack(); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if m.Scale != tc.scale {
				t.Fatalf("got scale %v, want %v", m.Scale, tc.scale)
			}
		})
	}
}

func TestQuantizeRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, sh := range [][2]int{{1, 1}, {3, 127}, {5, 128}, {7, 300}, {16, 2560}, {2, 1000}} {
		rows, cols := sh[0], sh[1]
		w := make([]float32, rows*cols)
		for i := range w {
			w[i] = float32(rng.NormFloat64() * 0.02)
		}
		m, err := Quantize(rows, cols, w)
		if err != nil {
			t.Fatal(err)
		}
		want, s := refQuantize(w)
		if got := m.Unpack(); !slices.Equal(got, want) || m.Scale != s {
			t.Fatalf("%dx%d: codes or scale (%v vs %v) differ from the reference", rows, cols, m.Scale, s)
		}
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
		zeros, rel, err := Stats(w, m)
		if err != nil {
			t.Fatal(err)
		}
		// Gaussian weights: about 31% below 0.5*mean|W| in magnitude, and a
		// relative error near 0.51.
		if rows*cols >= 1000 && (zeros < 0.25 || zeros > 0.37 || rel < 0.45 || rel > 0.57) {
			t.Errorf("%dx%d: got zeros %.3f relErr %.3f, want about 0.31 and 0.51", rows, cols, zeros, rel)
		}
	}
}

func TestQuantizeErrors(t *testing.T) {
	tests := []struct {
		name       string
		rows, cols int
		w          []float32
		want       string
	}{
		{"short", 2, 3, make([]float32, 5), "got 5 weights"},
		{"zero rows", 0, 3, nil, "positive"},
		{"overflow", 1 << 40, 1 << 40, nil, "got 0 weights"},
		{"nan", 1, 2, []float32{1, float32(math.NaN())}, "weight NaN at row 0 col 1 is not finite"},
		{"nan in body", 1, 6, []float32{1, 2, 3, float32(math.NaN()), 5, 6}, "weight NaN at row 0 col 3"},
		{"inf", 1, 2, []float32{float32(math.Inf(-1)), 1}, "not finite"},
	}
	for _, tc := range tests {
		if m, err := Quantize(tc.rows, tc.cols, tc.w); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got (%v, %v), want error containing %q", tc.name, m, err, tc.want)
		}
	}
}

func TestStats(t *testing.T) {
	m, err := Pack(1, 4, []int8{1, 0, -1, 0}, 2)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		w           []float32
		zeros, rel  float64
		errContains string
	}{
		{"exact", []float32{2, 0, -2, 0}, 0.5, 0, ""},
		// W - T*s = (1, 1, 0, 0): sqrt(2) / sqrt(9+1+4) .
		{"error", []float32{3, 1, -2, 0}, 0.5, math.Sqrt(2.0 / 14), ""},
		{"zero W", []float32{0, 0, 0, 0}, 0.5, math.Inf(1), ""},
		{"short", []float32{1}, 0, 0, "got 1 weights"},
	}
	for _, tc := range tests {
		z, rel, err := Stats(tc.w, m)
		if tc.errContains != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errContains) {
				t.Errorf("%s: got %v, want error containing %q", tc.name, err, tc.errContains)
			}
			continue
		}
		if err != nil || z != tc.zeros || math.Abs(rel-tc.rel) > 1e-12 && !(math.IsInf(rel, 1) && math.IsInf(tc.rel, 1)) {
			t.Errorf("%s: got %v, %v, %v; want %v, %v", tc.name, z, rel, err, tc.zeros, tc.rel)
		}
	}
	z, _ := New(1, 3, 1)
	if _, rel, err := Stats([]float32{0, 0, 0}, z); err != nil || rel != 0 {
		t.Errorf("zero W and zero T: got relErr %v, %v; want 0", rel, err)
	}
	if _, _, err := Stats(nil, nil); err == nil {
		t.Error("nil matrix: got no error")
	}
}
