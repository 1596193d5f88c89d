package train

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// BenchmarkMatmulNT measures the fp32 kernel on the recipe's largest linear
// (1024 tokens x 192 -> 512).
func BenchmarkMatmulNT(b *testing.B) {
	for _, tc := range []struct {
		threads int
		simd    bool
	}{{1, false}, {1, true}, {2, true}} {
		b.Run(fmt.Sprintf("simd=%v/threads=%d", tc.simd, tc.threads), func(b *testing.B) {
			n, m, k := 1024, 512, 192
			r := rand.New(rand.NewPCG(1, 2))
			a, w, y := make([]float32, n*k), make([]float32, m*k), make([]float32, n*m)
			for i := range a {
				a[i] = float32(r.NormFloat64())
			}
			for i := range w {
				w[i] = float32(r.NormFloat64())
			}
			p := newPool(tc.threads, kernels.FloatsFor(""))
			defer p.close()
			p.simd = p.simd && tc.simd
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				matmulNT(p, y, a, w, n, m, k, false)
			}
			b.ReportMetric(float64(2*n*m*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
		})
	}
}

// recipeConfig is the benchmark model (hidden 192, 3 layers, 6/2
// heads, intermediate 512, vocab 600, tied).
func recipeConfig() model.Config {
	return model.Config{
		Architecture: model.ArchBitNet, VocabSize: 600, HiddenSize: 192, IntermediateSize: 512,
		NumLayers: 3, NumHeads: 6, NumKVHeads: 2, HeadDim: 32, MaxPositions: 512,
		RopeTheta: 500000, RMSNormEps: 1e-5, HiddenAct: "relu2", TieWordEmbeddings: true, BOSTokenID: -1,
	}
}

// BenchmarkRecipeStep measures one optimiser step of the recipe (batch 8 x
// 128 tokens) and reports training tokens/s.
func BenchmarkRecipeStep(b *testing.B) {
	path, _ := tokenFile(b)
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			o := DefaultOptions()
			o.Threads, o.Steps = threads, 1<<20
			tr := newTestTrainer(b, path, recipeConfig(), o)
			runSteps(b, tr, 1)
			b.ResetTimer()
			runSteps(b, tr, b.N)
			b.ReportMetric(float64(b.N*o.Batch*o.Seq)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkLinearBwd compares the backward products of the recipe's largest
// linear (1024 tokens, 192 -> 512): strided NN kernels against transposes
// plus the NT kernel.
func BenchmarkLinearBwd(b *testing.B) {
	n, out, in := 1024, 512, 192
	r := rand.New(rand.NewPCG(3, 4))
	mk := func(k int) []float32 {
		v := make([]float32, k)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	x, w, dy := mk(n*in), mk(out*in), mk(n*out)
	dx, dw := make([]float32, n*in), make([]float32, out*in)
	p := newPool(1, kernels.FloatsFor(""))
	defer p.close()
	flops := float64(4 * n * out * in)
	b.Run("nn", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			matmulNN(p, dw, dy, 1, out, x, in, out, in, n, true)
			matmulNN(p, dx, dy, out, 1, w, in, n, in, out, false)
		}
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
	})
	b.Run("transpose+nt", func(b *testing.B) {
		dyT, xT, wT := make([]float32, n*out), make([]float32, n*in), make([]float32, out*in)
		for i := 0; i < b.N; i++ {
			transpose(p, dyT, dy, n, out)
			transpose(p, xT, x, n, in)
			matmulNT(p, dw, dyT, xT, out, in, n, true)
			transpose(p, wT, w, out, in)
			matmulNT(p, dx, dy, wT, n, in, out, false)
		}
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
	})
}

// transpose (for the benchmark) writes the cols x rows transpose of the row-major rows x cols
// matrix x into dst. Blocks of 16x16 keep both sides in cache; the inner loop
// writes contiguously (strided writes of power-of-two rows thrash L1 sets).
func transpose[F Float](p *pool, dst, x []F, rows, cols int) {
	const bs = 16
	cb := (cols + bs - 1) / bs
	p.run(cb, func(u int) {
		c0 := u * bs
		c1 := min(c0+bs, cols)
		for r0 := 0; r0 < rows; r0 += bs {
			r1 := min(r0+bs, rows)
			for c := c0; c < c1; c++ {
				d := dst[c*rows+r0 : c*rows+r1]
				for i := range d {
					d[i] = x[(r0+i)*cols+c]
				}
			}
		}
	})
}
