package kernels

import (
	"math/rand/v2"
	"testing"
)

// TestMatMulTritsMatchGeneric packs the 1.6-bit layout and checks every
// variant (the -tq1 ones read it), from memory and cache-resident, bit for
// bit against the generic kernel on the 2-bit codes.
func TestMatMulTritsMatchGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	gen := newEngine(t, Generic, 1)
	engines := variantEngines(t)
	cases := []shapeCase{{1, 1, 1, "", ""}, {5, 256, 1, "", ""}, {9, 320, 1, "", "max"}, {4, 640, 1, "plus", "min"},
		{33, 2560, 1, "", ""}, {17, 6912, 1, "minus", ""}, {8, 1000, 1, "zero", "min"}, {70, 300, 1, "", ""},
		// the widest rows the byte-addition decode takes, at its worst
		// case (every trit 2, every q -128), and one block past them
		{5, maxTritCols, 1, "plus", "min"}, {5, maxTritCols, 1, "plus", "max"}, {3, maxTritCols + 256, 1, "plus", "min"}}
	for range 20 {
		cases = append(cases, shapeCase{1 + rng.IntN(80), 1 + rng.IntN(4000), 1, "", ""})
	}
	for _, c := range cases {
		w := randTernary(t, rng, c.rows, c.cols, c.wmode)
		if err := w.PackTrits(); err != nil {
			t.Fatal(err)
		}
		a := randActivations(t, rng, 1, c.cols, c.qmode)
		want := make([]float32, c.rows)
		if err := gen.MatMul(want, w, a); err != nil {
			t.Fatal(err)
		}
		got := make([]float32, c.rows)
		matMulTritsGeneric(got, w, a, 0, c.rows)
		if i, ok := firstDiff(got, want); !ok {
			t.Fatalf("generic trits %dx%d: y[%d] got %v, want %v", c.rows, c.cols, i, got[i], want[i])
		}
		for i, e := range engines {
			mm := e.MatMul
			if i%2 == 1 {
				mm = e.MatMulResident
			}
			clear(got)
			if err := mm(got, w, a); err != nil {
				t.Fatal(err)
			}
			if i, ok := firstDiff(got, want); !ok {
				t.Fatalf("%s/%d threads trits %dx%d (%s,%s): y[%d] got %v, want %v",
					e.Variant(GEMVMemory), e.Threads(), c.rows, c.cols, c.wmode, c.qmode, i, got[i], want[i])
			}
		}
	}
}
