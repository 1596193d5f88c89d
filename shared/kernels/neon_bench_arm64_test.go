package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkNEONVariants compares the SDOT and plain NEON kernels on one
// thread, cache-resident (run on real arm64 hardware; qemu timings mean
// nothing): go test -run '^$' -bench NEONVariants ./shared/kernels/
func BenchmarkNEONVariants(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 3))
	const rows, cols = 2560, 2560
	w := fastTernary(rng, rows, cols)
	for _, n := range []int{1, 8, 64} {
		a := testActivations(rng, n, cols, fillRandom)
		y := make([]float32, n*rows)
		for _, v := range neonVariants() {
			b.Run(fmt.Sprintf("%s/%dx%d/n=%d", v.name, rows, cols, n), func(b *testing.B) {
				for b.Loop() {
					v.im.matMul(y, w, a, 0, rows)
				}
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(float64(len(w.Codes))/sec/1e9, "weightGB/s")
				b.ReportMetric(2*float64(rows*cols*n)/sec/1e9, "GOPS")
			})
		}
	}
}
