package train

import "math"

// attnScratchSize is the float count of one worker's attention buffers for
// seq T: one T x T matrix.
func attnScratchSize(T int) int { return T * T }

// attnFwd computes causal grouped-query attention for every (sequence, head):
// softmax(q k^T / sqrt(head_dim)) v over the positions up to each query,
// keeping the probabilities for the backward pass. Products run as small
// GEMMs over whole T x T blocks (the masked half is computed and zeroed:
// with SIMD that is cheaper than scalar triangles).
func (e *engine[F]) attnFwd(a *layerActs[F]) {
	c := e.cfg
	H, T, hd := c.NumHeads, e.seq, c.HeadDim
	qd, kvd := c.QDim(), c.KVDim()
	group := H / c.NumKVHeads
	scale := F(1 / math.Sqrt(float64(hd)))
	simd := e.pool.simd
	e.pool.run(e.batch*H, func(u int) {
		b, h := u/H, u%H
		off := (h / group) * hd
		probs := a.p[u*T*T : (u+1)*T*T]
		gemmNT(simd, probs, T, a.q[b*T*qd+h*hd:], qd, a.k[b*T*kvd+off:], kvd, T, T, hd, false)
		for i := 0; i < T; i++ {
			row := probs[i*T : (i+1)*T]
			m := F(math.Inf(-1))
			for j := 0; j <= i; j++ {
				row[j] *= scale
				m = max(m, row[j])
			}
			var sum F
			for j := 0; j <= i; j++ {
				ex := F(math.Exp(float64(row[j] - m)))
				row[j] = ex
				sum += ex
			}
			inv := 1 / sum
			for j := 0; j <= i; j++ {
				row[j] *= inv
			}
			clear(row[i+1:])
		}
		gemmNN(simd, a.att[b*T*qd+h*hd:], qd, probs, T, 1, a.v[b*T*kvd+off:], kvd, T, hd, T, false)
	})
}

// attnBwd writes the gradients of q, k and v (after RoPE) given datt. One
// unit owns one (sequence, kv head): it writes the dq of the heads in its
// group and sums their contributions to dk and dv in head order.
func (e *engine[F]) attnBwd(a *layerActs[F], datt, dq, dk, dv []F) {
	c := e.cfg
	H, KV, T, hd := c.NumHeads, c.NumKVHeads, e.seq, c.HeadDim
	qd, kvd := c.QDim(), c.KVDim()
	group := H / KV
	scale := F(1 / math.Sqrt(float64(hd)))
	simd := e.pool.simd
	e.pool.runW(e.batch*KV, func(w, u int) {
		b, g := u/KV, u%KV
		off := g * hd
		ds := e.scratch[w][:T*T]
		k, v := a.k[b*T*kvd+off:], a.v[b*T*kvd+off:]
		for h := g * group; h < (g+1)*group; h++ {
			probs := a.p[(b*H+h)*T*T : (b*H+h+1)*T*T]
			do := datt[b*T*qd+h*hd:]
			// dP = dO V^T, then dS = P * (dP - rowsum(P*dP)) * scale.
			gemmNT(simd, ds, T, do, qd, v, kvd, T, T, hd, false)
			for i := 0; i < T; i++ {
				row, pr := ds[i*T:(i+1)*T], probs[i*T:(i+1)*T]
				var dsum F
				for j := 0; j <= i; j++ {
					dsum += row[j] * pr[j]
				}
				for j := 0; j <= i; j++ {
					row[j] = pr[j] * (row[j] - dsum) * scale
				}
				clear(row[i+1:])
			}
			// dQ = dS K, dK (+)= dS^T Q, dV (+)= P^T dO (transposes by strides).
			gemmNN(simd, dq[b*T*qd+h*hd:], qd, ds, T, 1, k, kvd, T, hd, T, false)
			first := h == g*group
			gemmNN(simd, dk[b*T*kvd+off:], kvd, ds, 1, T, a.q[b*T*qd+h*hd:], qd, T, hd, T, !first)
			gemmNN(simd, dv[b*T*kvd+off:], kvd, probs, 1, T, do, qd, T, hd, T, !first)
		}
	})
}
