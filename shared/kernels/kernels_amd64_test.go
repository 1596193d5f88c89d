package kernels

import (
	"math/rand/v2"
	"testing"
)

// TestAVX512WithoutVNNI runs the AVX-512BW kernels (for CPUs without VNNI)
// against generic on a CPU that has both.
func TestAVX512WithoutVNNI(t *testing.T) {
	if !cpu.avx2 || !cpu.avx512f || !cpu.avx512bw || !cpu.avx512vl {
		t.Skip("no AVX-512BW")
	}
	rng := rand.New(rand.NewPCG(21, 22))
	im := impl{matMul: ternaryTiles(&tern512bwSet), prepare: permute512}
	for _, c := range shapeCases(rng, true) {
		w := randTernary(t, rng, c.rows, c.cols, c.wmode)
		a := randActivations(t, rng, c.n, c.cols, c.qmode)
		want := make([]float32, c.n*c.rows)
		matMulGeneric(want, w, a, 0, w.Rows)
		got := make([]float32, len(want))
		ap := *a
		ap.Q = im.prepare(nil, a)
		im.matMul(got, w, &ap, 0, w.Rows)
		if i, ok := firstDiff(got, want); !ok {
			t.Fatalf("%dx%d n=%d (%s,%s): y[%d] got %v, want %v", c.rows, c.cols, c.n, c.wmode, c.qmode, i, got[i], want[i])
		}
	}
}
