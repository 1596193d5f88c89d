package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/half"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

func TestQuantizeRowInt8MatchesKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{1, 7, 64, 1000} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64()) * 3
		}
		x[0] = 0.5 // ties
		got, want := make([]int8, n), make([]int8, n)
		scale := quantizeRowInt8(got, x)
		s, _ := kernels.QuantizeRow(want, x)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("n=%d: element %d: got %d, want %d", n, i, got[i], want[i])
			}
		}
		if scale != 1/s {
			t.Errorf("n=%d: got scale %g, want %g", n, scale, 1/s)
		}
	}
	zero := make([]int8, 3)
	if s := quantizeRowInt8(zero, []float32{0, 0, 0}); s != 1e-5/127 && math.Abs(float64(s)-1e-5/127) > 1e-12 {
		t.Errorf("zero row: got scale %g", s)
	}
}

func TestEmbeddingStorage(t *testing.T) {
	bf := []float32{half.FromBFloat16(0x3f80), half.FromBFloat16(0xc123), 0, -2}
	fp := []float32{half.FromFloat16(0x3c01), 1, 2, 3}
	f32 := []float32{1.0000001, 2, 3, 4}
	for _, tc := range []struct {
		name  string
		e     []float32
		bytes int
	}{{"bf16", bf, 8}, {"fp16", fp, 8}, {"f32", f32, 16}} {
		em := newEmbedding(tc.e, 2, 2)
		if em.bytes() != tc.bytes {
			t.Errorf("%s: got %d bytes, want %d", tc.name, em.bytes(), tc.bytes)
		}
		got := make([]float32, 2)
		for id := 0; id < 2; id++ {
			em.row(got, id)
			if got[0] != tc.e[2*id] || got[1] != tc.e[2*id+1] {
				t.Errorf("%s: row %d: got %v, want %v", tc.name, id, got, tc.e[2*id:2*id+2])
			}
		}
	}
}

func BenchmarkQuantizeRowInt8(b *testing.B) {
	x := make([]float32, 2560)
	r := rand.New(rand.NewPCG(1, 1))
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	q := make([]int8, len(x))
	b.SetBytes(int64(4 * len(x)))
	for b.Loop() {
		quantizeRowInt8(q, x)
	}
}

func TestFP16Exact(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	check := func(b uint32) {
		v := math.Float32frombits(b)
		h, ok := fp16Exact(b)
		want := !math.IsNaN(float64(v)) && math.Float32bits(half.FromFloat16(half.ToFloat16(v))) == b
		if ok != want || (ok && h != half.ToFloat16(v)) {
			t.Fatalf("bits %#x (%g): got %#x %v, want %#x %v", b, v, h, ok, half.ToFloat16(v), want)
		}
	}
	for h := 0; h < 1<<16; h++ { // every half value, widened
		check(math.Float32bits(half.FromFloat16(uint16(h))))
	}
	for i := 0; i < 200000; i++ {
		check(r.Uint32())
		check(r.Uint32() &^ 0x1fff) // mostly normal halves in range
	}
}
