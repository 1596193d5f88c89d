package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestQuantizeRowMatchesGeneric checks the fast quantiser against the float64
// definition bit for bit: random rows of every tail length, exact ties
// (x*scale = k + 0.5), zeros, denormals, huge and non-finite values.
func TestQuantizeRowMatchesGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	type tc struct {
		name string
		x    []float32
	}
	var cases []tc
	for _, n := range []int{0, 1, 3, 15, 16, 17, 31, 32, 33, 47, 64, 100, 2560, 6912} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64()) * 3
		}
		cases = append(cases, tc{fmt.Sprintf("normal/%d", n), x})
	}
	// Ties: with max |x| = 127 the scale is 1, so k+0.5 lands exactly halfway.
	ties := []float32{127}
	for k := -127; k < 127; k++ {
		ties = append(ties, float32(k)+0.5)
	}
	cases = append(cases, tc{"ties", ties})
	// Same with a scale of 2 (max 63.5): x = (k+0.5)/2.
	ties2 := []float32{-63.5}
	for k := -126; k < 126; k++ {
		ties2 = append(ties2, (float32(k)+0.5)/2)
	}
	cases = append(cases, tc{"ties/2", ties2})
	denorm := math.Float32frombits(1)
	special := [][]float32{
		make([]float32, 40),
		{denorm, -denorm, 0, float32(math.Copysign(0, -1))},
		{1e-7, -3e-6, 2e-6, 1e-5, -1e-5},
		{math.MaxFloat32, -math.MaxFloat32, 1, -1, 3e38},
		{1, 2, inf, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17},
		{-inf, 1, 2},
		{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, nan, 17, 18},
		{nan},
	}
	for i, x := range special {
		cases = append(cases, tc{fmt.Sprintf("special/%d", i), x})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, want := make([]int8, len(c.x)), make([]int8, len(c.x))
			gs, gsum := QuantizeRow(got, c.x)
			ws, wsum := quantizeRowGeneric(want, c.x)
			if math.Float32bits(gs) != math.Float32bits(ws) || gsum != wsum {
				t.Fatalf("got scale %v sum %d, want %v %d", gs, gsum, ws, wsum)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("q[%d] (x=%v): got %d, want %d", i, c.x[i], got[i], want[i])
				}
			}
		})
	}
}

// TestQuantizeScaledGo checks the portable magic-number loop (the one arm64
// runs) against the definition, including rows the SIMD loop would take.
func TestQuantizeScaledGo(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for n := range 80 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		want := make([]int8, n)
		scale, wsum := quantizeRowGeneric(want, x)
		if g, w := absMaxBitsGo(x), absMaxBits(x, hasAVX512Quant); g != w {
			t.Fatalf("n=%d: absMaxBitsGo got %#x, absMaxBits %#x", n, g, w)
		}
		got := make([]int8, n)
		if gsum := quantizeScaledGo(got, x, scale); gsum != wsum {
			t.Fatalf("n=%d: got sum %d, want %d", n, gsum, wsum)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("n=%d q[%d]: got %d, want %d", n, i, got[i], want[i])
			}
		}
	}
}

// FuzzQuantizeRow compares QuantizeRow with the float64 definition on
// arbitrary bit patterns.
func FuzzQuantizeRow(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 192, 127})
	f.Fuzz(func(t *testing.T, b []byte) {
		x := make([]float32, len(b)/4)
		for i := range x {
			x[i] = math.Float32frombits(uint32(b[4*i]) | uint32(b[4*i+1])<<8 | uint32(b[4*i+2])<<16 | uint32(b[4*i+3])<<24)
		}
		got, want := make([]int8, len(x)), make([]int8, len(x))
		gs, gsum := QuantizeRow(got, x)
		ws, wsum := quantizeRowGeneric(want, x)
		if math.Float32bits(gs) != math.Float32bits(ws) && !(gs != gs && ws != ws) || gsum != wsum {
			t.Fatalf("got scale %v sum %d, want %v %d", gs, gsum, ws, wsum)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("q[%d] (x=%v): got %d, want %d", i, x[i], got[i], want[i])
			}
		}
	})
}

func BenchmarkQuantizeRow(b *testing.B) {
	x := make([]float32, 6912)
	r := rand.New(rand.NewPCG(1, 1))
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	q := make([]int8, len(x))
	for _, bc := range []struct {
		name string
		fn   func([]int8, []float32) (float32, int32)
	}{{"fast", QuantizeRow}, {"go", func(q []int8, x []float32) (float32, int32) {
		s := 127 / max(math.Float32frombits(absMaxBitsGo(x)), 1e-5)
		return s, quantizeScaledGo(q, x, s)
	}}, {"generic", quantizeRowGeneric}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				bc.fn(q, x)
			}
		})
	}
}
