package train

import (
	"unsafe"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

// The AVX2+FMA tiles live in package kernels (one home for SIMD); the pool
// uses them when its kernels.Floats has SIMD.
var (
	dot4x3AVX2 = kernels.Dot4x3
	dot4x1AVX2 = kernels.Dot4x1
	nn4x16AVX2 = kernels.NN4x16
)

// mmTileSIMD computes rows [i0,i1) x columns [j0,j1) of y = a b^T (row
// strides ldy, lda, ldb) with AVX2 (k a multiple of 8): 4x3 tiles, 4x1 for
// the last columns, scalar rows. Callers check that the slices hold every
// row they address.
func mmTileSIMD(y []float32, ldy int, a []float32, lda int, b []float32, ldb int, i0, i1, j0, j1, k int, acc bool) {
	var o12 [12]float32
	var o4 [4]float32
	i := i0
	for ; i+4 <= i1; i += 4 {
		ap := unsafe.SliceData(a[i*lda : (i+3)*lda+k])
		j := j0
		for ; j+3 <= j1; j += 3 {
			bp := unsafe.SliceData(b[j*ldb : (j+2)*ldb+k])
			dot4x3AVX2(ap, lda, bp, ldb, k, &o12)
			for r := 0; r < 4; r++ {
				row := y[(i+r)*ldy+j : (i+r)*ldy+j+3]
				if acc {
					row[0] += o12[r*3]
					row[1] += o12[r*3+1]
					row[2] += o12[r*3+2]
				} else {
					row[0], row[1], row[2] = o12[r*3], o12[r*3+1], o12[r*3+2]
				}
			}
		}
		for ; j < j1; j++ {
			dot4x1AVX2(ap, lda, unsafe.SliceData(b[j*ldb:j*ldb+k]), k, &o4)
			for r := 0; r < 4; r++ {
				if acc {
					y[(i+r)*ldy+j] += o4[r]
				} else {
					y[(i+r)*ldy+j] = o4[r]
				}
			}
		}
	}
	for ; i < i1; i++ {
		for j := j0; j < j1; j++ {
			ar, br := a[i*lda:i*lda+k], b[j*ldb:j*ldb+k]
			var c float32
			for p := range ar {
				c += ar[p] * br[p]
			}
			if acc {
				y[i*ldy+j] += c
			} else {
				y[i*ldy+j] = c
			}
		}
	}
}

// nnTileSIMD computes rows [i0,i1) x columns [j0,j1) of y (row stride ldy)
// (+)= A B with A[i,p] = a[i*rsa+p*csa] and B[p,j] = b[p*ldb+j]: AVX2 4x16
// blocks, scalar edges. Callers check that the slices hold every element
// they address.
func nnTileSIMD(y []float32, ldy int, a []float32, rsa, csa int, b []float32, ldb int, i0, i1, j0, j1, k int, acc bool) {
	var o [64]float32
	i := i0
	for ; i+4 <= i1; i += 4 {
		j := j0
		for ; j+16 <= j1; j += 16 {
			nn4x16AVX2(&a[i*rsa], rsa, csa, &b[j], ldb, k, &o)
			for r := 0; r < 4; r++ {
				row, src := y[(i+r)*ldy+j:(i+r)*ldy+j+16], o[r*16:r*16+16]
				if acc {
					for c, v := range src {
						row[c] += v
					}
				} else {
					copy(row, src)
				}
			}
		}
		if j < j1 {
			gemmNNScalar(y, ldy, a, rsa, csa, b, ldb, i, i+4, j, j1, k, acc)
		}
	}
	if i < i1 {
		gemmNNScalar(y, ldy, a, rsa, csa, b, ldb, i, i1, j0, j1, k, acc)
	}
}
