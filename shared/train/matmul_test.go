package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

// TestMatmulNT checks both float32 paths (SIMD tiles where available, and
// the generic tiles) against a float64 reference, with and without
// accumulation, on shapes that exercise every tile edge.
func TestMatmulNT(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, simd := range []bool{false, true} {
		for _, sh := range [][3]int{{1, 1, 1}, {4, 3, 8}, {5, 7, 16}, {17, 50, 24}, {33, 97, 40}, {8, 9, 13}, {64, 600, 192}} {
			n, m, k := sh[0], sh[1], sh[2]
			t.Run(fmt.Sprintf("simd=%v/%dx%dx%d", simd, n, m, k), func(t *testing.T) {
				a, b := make([]float32, n*k), make([]float32, m*k)
				for i := range a {
					a[i] = float32(r.NormFloat64())
				}
				for i := range b {
					b[i] = float32(r.NormFloat64())
				}
				p := newPool(3, kernels.FloatsFor(""))
				defer p.close()
				p.simd = simd && p.simd
				y := make([]float32, n*m)
				for i := range y {
					y[i] = 1
				}
				matmulNT(p, y, a, b, n, m, k, true)
				for i := 0; i < n; i++ {
					for j := 0; j < m; j++ {
						want, mag := 1.0, 1.0
						for q := 0; q < k; q++ {
							v := float64(a[i*k+q]) * float64(b[j*k+q])
							want += v
							mag += math.Abs(v)
						}
						if got := float64(y[i*m+j]); math.Abs(got-want) > 1e-5*mag {
							t.Fatalf("y[%d,%d] = %v, want %v", i, j, got, want)
						}
					}
				}
			})
		}
	}
}

// TestMatmulNN checks matmulNN (plain and transposed A) on both float32
// paths against a float64 reference.
func TestMatmulNN(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, simd := range []bool{false, true} {
		for _, trans := range []bool{false, true} {
			for _, sh := range [][3]int{{1, 1, 1}, {4, 16, 3}, {5, 17, 9}, {18, 50, 24}, {33, 97, 40}, {64, 192, 130}} {
				n, m, k := sh[0], sh[1], sh[2]
				t.Run(fmt.Sprintf("simd=%v/trans=%v/%dx%dx%d", simd, trans, n, m, k), func(t *testing.T) {
					a, b := make([]float32, n*k), make([]float32, k*m)
					for i := range a {
						a[i] = float32(r.NormFloat64())
					}
					for i := range b {
						b[i] = float32(r.NormFloat64())
					}
					rsa, csa := k, 1
					if trans { // a holds A^T (k x n)
						rsa, csa = 1, n
					}
					p := newPool(3, kernels.FloatsFor(""))
					defer p.close()
					p.simd = simd && p.simd
					y := make([]float32, n*m)
					for i := range y {
						y[i] = 1
					}
					matmulNN(p, y, a, rsa, csa, b, m, n, m, k, true)
					for i := 0; i < n; i++ {
						for j := 0; j < m; j++ {
							want, mag := 1.0, 1.0
							for q := 0; q < k; q++ {
								v := float64(a[i*rsa+q*csa]) * float64(b[q*m+j])
								want += v
								mag += math.Abs(v)
							}
							if got := float64(y[i*m+j]); math.Abs(got-want) > 1e-5*mag {
								t.Fatalf("y[%d,%d] = %v, want %v", i, j, got, want)
							}
						}
					}
				})
			}
		}
	}
}
