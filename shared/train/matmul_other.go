//go:build !amd64

package train

func mmTileSIMD(y []float32, ldy int, a []float32, lda int, b []float32, ldb int, i0, i1, j0, j1, k int, acc bool) {
	gemmScalar(y, ldy, a, lda, b, ldb, i0, i1, j0, j1, k, acc)
}

func nnTileSIMD(y []float32, ldy int, a []float32, rsa, csa int, b []float32, ldb int, i0, i1, j0, j1, k int, acc bool) {
	gemmNNScalar(y, ldy, a, rsa, csa, b, ldb, i0, i1, j0, j1, k, acc)
}
