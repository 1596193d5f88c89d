package train

// Float is the element type of the engine: float32 for training, float64
// for gradient checks.
type Float interface{ ~float32 | ~float64 }

// Tile sizes of matmulNT: rows of a (and y) per unit, columns of y per unit.
// The grid depends only on the shapes, never on the thread count.
const (
	tileRows = 16
	tileCols = 48 // a multiple of the SIMD tiles' 3 columns and the generic 4
)

// matmulNT computes y[i*m+j] (+)= sum_p a[i*k+p] * b[j*k+p] for i < n, j < m:
// y = a b^T with a n x k and b m x k row-major. With acc the product is added
// to y. Each element is one sequential sum over p, computed by exactly one
// goroutine, so the result is independent of the pool's thread count.
func matmulNT[F Float](p *pool, y, a, b []F, n, m, k int, acc bool) {
	rb := (n + tileRows - 1) / tileRows
	cb := (m + tileCols - 1) / tileCols
	if y32, ok := any(y).([]float32); ok && p.simd && k%8 == 0 && k > 0 {
		a32, b32 := any(a).([]float32), any(b).([]float32)
		_, _ = a32[n*k-1], b32[m*k-1] // the assembly does not check bounds
		p.run(rb*cb, func(u int) {
			i0, j0 := (u/cb)*tileRows, (u%cb)*tileCols
			mmTileSIMD(y32, m, a32, k, b32, k, i0, min(i0+tileRows, n), j0, min(j0+tileCols, m), k, acc)
		})
		return
	}
	p.run(rb*cb, func(u int) {
		i0, j0 := (u/cb)*tileRows, (u%cb)*tileCols
		mmTile(y, a, b, i0, min(i0+tileRows, n), j0, min(j0+tileCols, m), m, k, acc)
	})
}

// mmTile computes rows [i0,i1) x columns [j0,j1) of y in 4x4 register tiles.
func mmTile[F Float](y, a, b []F, i0, i1, j0, j1, m, k int, acc bool) {
	i := i0
	for ; i+4 <= i1; i += 4 {
		a0, a1, a2, a3 := a[i*k:(i+1)*k], a[(i+1)*k:(i+2)*k], a[(i+2)*k:(i+3)*k], a[(i+3)*k:(i+4)*k]
		a1, a2, a3 = a1[:len(a0)], a2[:len(a0)], a3[:len(a0)] // lets the compiler drop bounds checks
		j := j0
		for ; j+4 <= j1; j += 4 {
			b0, b1, b2, b3 := b[j*k:(j+1)*k], b[(j+1)*k:(j+2)*k], b[(j+2)*k:(j+3)*k], b[(j+3)*k:(j+4)*k]
			b0, b1, b2, b3 = b0[:len(a0)], b1[:len(a0)], b2[:len(a0)], b3[:len(a0)]
			var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 F
			for p := range a0 {
				x0, x1, x2, x3 := a0[p], a1[p], a2[p], a3[p]
				y0, y1, y2, y3 := b0[p], b1[p], b2[p], b3[p]
				c00 += x0 * y0
				c01 += x0 * y1
				c02 += x0 * y2
				c03 += x0 * y3
				c10 += x1 * y0
				c11 += x1 * y1
				c12 += x1 * y2
				c13 += x1 * y3
				c20 += x2 * y0
				c21 += x2 * y1
				c22 += x2 * y2
				c23 += x2 * y3
				c30 += x3 * y0
				c31 += x3 * y1
				c32 += x3 * y2
				c33 += x3 * y3
			}
			store4(y[i*m+j:], c00, c01, c02, c03, acc)
			store4(y[(i+1)*m+j:], c10, c11, c12, c13, acc)
			store4(y[(i+2)*m+j:], c20, c21, c22, c23, acc)
			store4(y[(i+3)*m+j:], c30, c31, c32, c33, acc)
		}
		for ; j < j1; j++ {
			for r := i; r < i+4; r++ {
				storeDot(y, a, b, r, j, m, k, acc)
			}
		}
	}
	for ; i < i1; i++ {
		for j := j0; j < j1; j++ {
			storeDot(y, a, b, i, j, m, k, acc)
		}
	}
}

func store4[F Float](y []F, c0, c1, c2, c3 F, acc bool) {
	y = y[:4]
	if acc {
		y[0] += c0
		y[1] += c1
		y[2] += c2
		y[3] += c3
		return
	}
	y[0], y[1], y[2], y[3] = c0, c1, c2, c3
}

// storeDot computes one element with the same sequential sum as the tiles.
func storeDot[F Float](y, a, b []F, i, j, m, k int, acc bool) {
	ar, br := a[i*k:(i+1)*k], b[j*k:(j+1)*k]
	var c F
	for p := range ar {
		c += ar[p] * br[p]
	}
	if acc {
		y[i*m+j] += c
	} else {
		y[i*m+j] = c
	}
}

// matmulNN computes y[i*m+j] (+)= sum_p A[i,p] * B[p,j] for i < n, j < m,
// p < k, with A[i,p] = a[i*rsa+p*csa] (so a transposed operand needs no
// copy) and B[p,j] = b[p*ldb+j]. Each element is one sequential sum over p
// computed by one goroutine on a tile grid fixed by the shapes.
func matmulNN[F Float](p *pool, y, a []F, rsa, csa int, b []F, ldb, n, m, k int, acc bool) {
	rb := (n + tileRows - 1) / tileRows
	cb := (m + tileCols - 1) / tileCols
	p.run(rb*cb, func(u int) {
		i0, j0 := (u/cb)*tileRows, (u%cb)*tileCols
		gemmNNRange(p.simd, y, m, a, rsa, csa, b, ldb, i0, min(i0+tileRows, n), j0, min(j0+tileCols, m), k, acc)
	})
}

// gemmNN is matmulNN with an output row stride, on the calling goroutine.
func gemmNN[F Float](simd bool, y []F, ldy int, a []F, rsa, csa int, b []F, ldb, n, m, k int, acc bool) {
	gemmNNRange(simd, y, ldy, a, rsa, csa, b, ldb, 0, n, 0, m, k, acc)
}

func gemmNNRange[F Float](simd bool, y []F, ldy int, a []F, rsa, csa int, b []F, ldb, i0, i1, j0, j1, k int, acc bool) {
	if i0 >= i1 || j0 >= j1 {
		return
	}
	if k <= 0 {
		if !acc {
			for i := i0; i < i1; i++ {
				clear(y[i*ldy+j0 : i*ldy+j1])
			}
		}
		return
	}
	// The assembly does not check bounds: touch the last element of each operand.
	_, _, _ = y[(i1-1)*ldy+j1-1], a[(i1-1)*rsa+(k-1)*csa], b[(k-1)*ldb+j1-1]
	if y32, ok := any(y).([]float32); ok && simd {
		nnTileSIMD(y32, ldy, any(a).([]float32), rsa, csa, any(b).([]float32), ldb, i0, i1, j0, j1, k, acc)
		return
	}
	gemmNNScalar(y, ldy, a, rsa, csa, b, ldb, i0, i1, j0, j1, k, acc)
}

// gemmNNScalar is gemmNNRange in plain Go: row i of y accumulates rank-1
// updates p = 0, 1, ... in order, like the SIMD blocks.
func gemmNNScalar[F Float](y []F, ldy int, a []F, rsa, csa int, b []F, ldb, i0, i1, j0, j1, k int, acc bool) {
	for i := i0; i < i1; i++ {
		yr := y[i*ldy+j0 : i*ldy+j1]
		var row [tileCols]F
		for c0 := 0; c0 < len(yr); c0 += tileCols {
			c1 := min(c0+tileCols, len(yr))
			acc2 := row[:c1-c0]
			clear(acc2)
			for p := 0; p < k; p++ {
				av := a[i*rsa+p*csa]
				br := b[p*ldb+j0+c0 : p*ldb+j0+c1]
				for c, v := range br {
					acc2[c] += av * v
				}
			}
			for c, v := range acc2 {
				if acc {
					yr[c0+c] += v
				} else {
					yr[c0+c] = v
				}
			}
		}
	}
}

// gemmNT computes y[i*ldy+j] (+)= sum_p a[i*lda+p] * b[j*ldb+p] for i < n,
// j < m, p < k on the calling goroutine (strided operands: attention heads
// inside token rows), with the SIMD tiles for float32 when simd is set and k
// is a multiple of 8.
func gemmNT[F Float](simd bool, y []F, ldy int, a []F, lda int, b []F, ldb int, n, m, k int, acc bool) {
	if n <= 0 || m <= 0 || k <= 0 {
		return
	}
	_, _, _ = y[(n-1)*ldy+m-1], a[(n-1)*lda+k-1], b[(m-1)*ldb+k-1] // the assembly does not check bounds
	if y32, ok := any(y).([]float32); ok && simd && k%8 == 0 {
		mmTileSIMD(y32, ldy, any(a).([]float32), lda, any(b).([]float32), ldb, 0, n, 0, m, k, acc)
		return
	}
	gemmScalar(y, ldy, a, lda, b, ldb, 0, n, 0, m, k, acc)
}

// gemmScalar is gemmNT over rows [i0,i1) and columns [j0,j1) in plain Go.
func gemmScalar[F Float](y []F, ldy int, a []F, lda int, b []F, ldb int, i0, i1, j0, j1, k int, acc bool) {
	for i := i0; i < i1; i++ {
		ar := a[i*lda : i*lda+k]
		for j := j0; j < j1; j++ {
			br := b[j*ldb : j*ldb+k]
			br = br[:len(ar)]
			var c F
			for p, v := range ar {
				c += v * br[p]
			}
			if acc {
				y[i*ldy+j] += c
			} else {
				y[i*ldy+j] = c
			}
		}
	}
}
