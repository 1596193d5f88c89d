package kernels

// tileFn computes an R x T tile of int32 dot products over nblk blocks of 256
// weights: out[r*T+t] = dot(row r at codes+r*stride, token t at q+t*qstride).
// What "dot" means (codes or int8, q order) depends on the kernel family.
type tileFn func(codes *byte, stride int, q *int8, qstride int, nblk int, out *int32)

// rowKernel is a tile kernel for one token and rows rows.
type rowKernel struct {
	rows int
	fn   tileFn
}

// tileSet is one path's family of tile kernels.
type tileSet struct {
	gemv []rowKernel // n = 1: row counts descending, the last one 1
	R, T int
	big  tileFn // R x T
	rows tileFn // R x 1, for the tokens left over by T
	thin tileFn // 1 x T, for the rows left over by R
	one  tileFn // 1 x 1
}

// maxTile bounds R*T of every tile set.
const maxTile = 32

// stackTile returns its argument. The tile kernels and finishers are called
// through func values, so the compiler would move a tile passed to them to
// the heap (an allocation per product); none of them keeps the pointer, and
// this assembly identity function, declared noescape, says so.
//
//go:noescape
func stackTile(d *[maxTile]int32) *[maxTile]int32

// finisher turns the int32 tile d (R x T, at row r and token t) into outputs.
type finisher func(r, t, R, T int, d *[maxTile]int32)

// run computes rows [r0, r1) for n tokens of a weight matrix w (rows ws bytes
// apart) and activations q (tokens qs bytes apart), nblk blocks per row.
func (ts *tileSet) run(w []byte, ws int, q []int8, qs, nblk, r0, r1, n int, fin finisher) {
	var buf [maxTile]int32
	d := stackTile(&buf)
	if n == 1 {
		r := r0
		for _, g := range ts.gemv {
			// Fill the whole tile with consecutive row groups before
			// finishing them: one finisher call per maxTile rows.
			for g.rows <= maxTile && r+g.rows <= r1 {
				k := 0
				for ; k+g.rows <= maxTile && r+k+g.rows <= r1; k += g.rows {
					g.fn(&w[(r+k)*ws], ws, &q[0], qs, nblk, &d[k])
				}
				fin(r, 0, k, 1, d)
				r += k
			}
		}
		return
	}
	// Three levels: rows in chunks of about 128 KiB of weights (they stay
	// in L2); within a chunk, tokens in blocks whose q fits in L1; within
	// a block, every row tile against every token tile, so each tile of
	// weights is decoded once per block while it is in L1.
	rc := max(ts.R, (128<<10)/ws/ts.R*ts.R)
	tb := max(ts.T, (24<<10)/qs/ts.T*ts.T)
	full := n / ts.T * ts.T // tokens in full tiles
	for c0 := r0; c0 < r1; c0 += rc {
		c1 := min(c0+rc, r1)
		for b0 := 0; b0 < full; b0 += tb {
			b1 := min(b0+tb, full)
			r := c0
			for ; r+ts.R <= c1; r += ts.R {
				for t := b0; t < b1; t += ts.T {
					ts.big(&w[r*ws], ws, &q[t*qs], qs, nblk, &d[0])
					fin(r, t, ts.R, ts.T, d)
				}
			}
			for ; r < c1; r++ {
				for t := b0; t < b1; t += ts.T {
					ts.thin(&w[r*ws], ws, &q[t*qs], qs, nblk, &d[0])
					fin(r, t, 1, ts.T, d)
				}
			}
		}
		for t := full; t < n; t++ {
			r := c0
			for ; r+ts.R <= c1; r += ts.R {
				ts.rows(&w[r*ws], ws, &q[t*qs], qs, nblk, &d[0])
				fin(r, t, ts.R, 1, d)
			}
			for ; r < c1; r++ {
				ts.one(&w[r*ws], ws, &q[t*qs], qs, nblk, &d[0])
				fin(r, t, 1, 1, d)
			}
		}
	}
}
