package train

import (
	"fmt"

	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// layerActs holds what one decoder block's backward pass needs from its
// forward pass. Quantised inputs alias the unquantised ones when
// quantisation is off.
type layerActs[F Float] struct {
	in             []F // residual stream entering the block
	xn1, inv1, xq1 []F // input_layernorm output, its inverse RMS, q/k/v input
	q, k, v        []F // projections, q and k after RoPE
	p              []F // attention probabilities, batch x heads x seq x seq
	att            []F // attention output before attn_sub_norm
	inv2, an, aq   []F // attn_sub_norm: inverse RMS, output, o_proj input
	mid            []F // residual stream after attention
	xn3, inv3, xq3 []F // post_attention_layernorm
	g, u, f        []F // gate, up, relu2(gate)*up
	inv4, fn, fq   []F // ffn_sub_norm

	off [4][]F // frozen quantisation offsets of the four BitLinear inputs (tests)
}

// engine is the forward and backward pass of one model shape on batches of
// batch x seq tokens. It is not safe for concurrent use.
type engine[F Float] struct {
	cfg        model.Config
	lay        layout
	quant      bool
	pool       *pool
	batch, seq int

	params, grads []F
	w, g          view[F]
	wq            [][tensorsPerLayer][]F // dequantised ternary linears (quant only)
	wqStale       bool

	// freeze replaces each quantiser by x + (q(x0) - x0) with the offset
	// captured at the first forward: a smooth surrogate whose exact gradient
	// is the straight-through estimate, for finite-difference tests.
	freeze bool
	wOff   [][tensorsPerLayer][]F

	cos, sin []F
	acts     []layerActs[F]
	x        []F // residual stream after the last block
	hn, hinv []F // final norm output and inverse RMS
	logits   []F // logits, then their gradient
	loss     []float64
	targets  []int
	tokens   []int

	// scratch for the backward pass
	dres, da, db, dc, dd, de []F
	scratch                  [][]F // per pool worker, for attention
	normPart                 []F   // per row block partial norm-weight gradients
}

// normRows is the row block of the parallel RMSNorm passes; the grid
// depends only on the row count, so results do not depend on threads.
const normRows = 32

// rmsFwd is rmsNormFwd over row blocks in parallel.
func (e *engine[F]) rmsFwd(y, inv, x, w []F, eps float64) {
	n, rows := len(w), len(inv)
	e.pool.run((rows+normRows-1)/normRows, func(u int) {
		r0, r1 := u*normRows, min(u*normRows+normRows, rows)
		rmsNormFwd(y[r0*n:r1*n], inv[r0:r1], x[r0*n:r1*n], w, eps)
	})
}

// rmsBwd is rmsNormBwd over row blocks in parallel; the blocks' weight
// gradients are summed into dw in block order.
func (e *engine[F]) rmsBwd(dx, dw, dy, x, inv, w []F, acc bool) {
	n, rows := len(w), len(inv)
	blocks := (rows + normRows - 1) / normRows
	part := e.normPart[:blocks*n]
	clear(part)
	e.pool.run(blocks, func(u int) {
		r0, r1 := u*normRows, min(u*normRows+normRows, rows)
		rmsNormBwd(dx[r0*n:r1*n], part[u*n:(u+1)*n], dy[r0*n:r1*n], x[r0*n:r1*n], inv[r0:r1], w, acc)
	})
	for u := 0; u < blocks; u++ {
		for i, v := range part[u*n : (u+1)*n] {
			dw[i] += v
		}
	}
}

// elemChunk is the unit of parallel element-wise work.
const elemChunk = 1 << 13

// parallelElems calls fn on [lo, hi) chunks of [0, n) in parallel.
func (e *engine[F]) parallelElems(n int, fn func(lo, hi int)) {
	e.pool.run((n+elemChunk-1)/elemChunk, func(u int) {
		fn(u*elemChunk, min(u*elemChunk+elemChunk, n))
	})
}

func newEngine[F Float](c model.Config, quant bool, p *pool, batch, seq int) *engine[F] {
	e := &engine[F]{cfg: c, lay: newLayout(c), quant: quant, pool: p, batch: batch, seq: seq, wqStale: true}
	e.params = make([]F, e.lay.size)
	e.grads = make([]F, e.lay.size)
	e.w = makeView(e.lay, c, e.params)
	e.g = makeView(e.lay, c, e.grads)
	e.cos, e.sin = ropeTables[F](seq, c.HeadDim, c.RopeTheta)
	n := batch * seq
	h, qd, kvd, in, V := c.HiddenSize, c.QDim(), c.KVDim(), c.IntermediateSize, c.VocabSize
	mk := func(k int) []F { return make([]F, k) }
	e.acts = make([]layerActs[F], c.NumLayers)
	for i := range e.acts {
		a := &e.acts[i]
		a.in, a.xn1, a.inv1 = mk(n*h), mk(n*h), mk(n)
		a.q, a.k, a.v = mk(n*qd), mk(n*kvd), mk(n*kvd)
		a.p = mk(batch * c.NumHeads * seq * seq)
		a.att, a.inv2, a.an = mk(n*qd), mk(n), mk(n*qd)
		a.mid, a.xn3, a.inv3 = mk(n*h), mk(n*h), mk(n)
		a.g, a.u, a.f = mk(n*in), mk(n*in), mk(n*in)
		a.inv4, a.fn = mk(n), mk(n*in)
		if quant {
			a.xq1, a.aq, a.xq3, a.fq = mk(n*h), mk(n*qd), mk(n*h), mk(n*in)
		} else {
			a.xq1, a.aq, a.xq3, a.fq = a.xn1, a.an, a.xn3, a.fn
		}
	}
	if quant {
		e.wq = make([][tensorsPerLayer][]F, c.NumLayers)
		for i := range e.wq {
			for t := tQ; t < tensorsPerLayer; t++ {
				e.wq[i][t] = mk(len(e.w.layers[i][t]))
			}
		}
	}
	e.x, e.hn, e.hinv = mk(n*h), mk(n*h), mk(n)
	e.logits, e.loss = mk(n*V), make([]float64, n)
	wide := max(h, qd, in)
	e.dres, e.da, e.db, e.dc, e.dd, e.de = mk(n*h), mk(n*wide), mk(n*wide), mk(n*wide), mk(n*wide), mk(n*wide)
	e.normPart = mk((n + normRows - 1) / normRows * max(h, qd, in))
	e.scratch = make([][]F, p.threads)
	for i := range e.scratch {
		e.scratch[i] = mk(attnScratchSize(seq))
	}
	return e
}

// linW returns the weights layer li's linear t multiplies in the forward pass.
func (e *engine[F]) linW(li, t int) []F {
	if e.quant {
		return e.wq[li][t]
	}
	return e.w.layers[li][t]
}

// linShape returns (out, in) of linear t.
func (e *engine[F]) linShape(t int) (int, int) {
	c := e.cfg
	h, qd, kvd, in := c.HiddenSize, c.QDim(), c.KVDim(), c.IntermediateSize
	switch t {
	case tQ:
		return qd, h
	case tK, tV:
		return kvd, h
	case tO:
		return h, qd
	case tGate, tUp:
		return in, h
	default:
		return h, in
	}
}

// refreshQuant re-ternarises the linears after the parameters changed.
func (e *engine[F]) refreshQuant() error {
	if !e.quant || !e.wqStale {
		return nil
	}
	capture := e.freeze && e.wOff == nil
	if capture {
		e.wOff = make([][tensorsPerLayer][]F, len(e.wq))
	}
	for li := range e.wq {
		for t := tQ; t < tensorsPerLayer; t++ {
			w, wq := e.w.layers[li][t], e.wq[li][t]
			if e.freeze && !capture {
				for i, v := range w {
					wq[i] = v + e.wOff[li][t][i]
				}
				continue
			}
			out, in := e.linShape(t)
			if err := quantWeights(wq, w, out, in); err != nil {
				return fmt.Errorf("train: layer %d %s: %w", li, layerNames[t], err)
			}
			if capture {
				e.wOff[li][t] = make([]F, len(w))
				for i, v := range w {
					e.wOff[li][t][i] = wq[i] - v
				}
			}
		}
	}
	e.wqStale = false
	return nil
}

// quantInput writes the quantised activations of x into y (site is the
// input's index within the layer, for frozen offsets).
func (e *engine[F]) quantInput(a *layerActs[F], site int, y, x []F, cols int) {
	off := &a.off[site]
	if e.freeze && *off != nil {
		for i, v := range x {
			y[i] = v + (*off)[i]
		}
		return
	}
	quantActs(e.pool, y, x, len(x)/cols, cols)
	if e.freeze {
		*off = make([]F, len(x))
		for i, v := range x {
			(*off)[i] = y[i] - v
		}
	}
}

// forward runs tokens (batch*seq ids) through the model and returns the mean
// cross-entropy against targets (-1 entries are ignored); it leaves what
// backward needs in e, with the loss gradient scaled by gradScale (1/k when
// k micro-batches are accumulated).
func (e *engine[F]) forward(tokens, targets []int, gradScale float64) (float64, error) {
	c := e.cfg
	n := e.batch * e.seq
	if len(tokens) != n || len(targets) != n {
		return 0, fmt.Errorf("train: got %d tokens and %d targets, want batch*seq = %d*%d", len(tokens), len(targets), e.batch, e.seq)
	}
	for i, id := range tokens {
		if id < 0 || id >= c.VocabSize || targets[i] >= c.VocabSize {
			return 0, fmt.Errorf("train: token %d: id %d or target %d out of range [0,%d)", i, id, targets[i], c.VocabSize)
		}
	}
	if err := e.refreshQuant(); err != nil {
		return 0, err
	}
	e.tokens, e.targets = tokens, targets
	h := c.HiddenSize
	x := e.x
	if c.NumLayers > 0 {
		x = e.acts[0].in
	}
	for t, id := range tokens {
		copy(x[t*h:(t+1)*h], e.w.embed[id*h:(id+1)*h])
	}
	for li := range e.acts {
		out := e.x
		if li+1 < len(e.acts) {
			out = e.acts[li+1].in
		}
		e.layerFwd(li, out)
	}
	V := c.VocabSize
	e.rmsFwd(e.hn, e.hinv, e.x, e.w.norm, float64(c.RMSNormEps))
	matmulNT(e.pool, e.logits, e.hn, e.w.head, n, V, h, false)
	count := 0
	for _, tg := range targets {
		if tg >= 0 {
			count++
		}
	}
	if count == 0 {
		return 0, fmt.Errorf("train: batch has no targets")
	}
	// The gradient is computed in place here; backward scales it.
	crossEntropy(e.pool, e.logits, e.loss, targets, V, F(gradScale/float64(count)))
	var sum float64
	for _, l := range e.loss {
		sum += l
	}
	return sum / float64(count), nil
}

func (e *engine[F]) layerFwd(li int, out []F) {
	c, a, W := e.cfg, &e.acts[li], e.w.layers[li]
	n := e.batch * e.seq
	h, qd, kvd, in := c.HiddenSize, c.QDim(), c.KVDim(), c.IntermediateSize
	eps := float64(c.RMSNormEps)

	e.rmsFwd(a.xn1, a.inv1, a.in, W[tAttnNorm], eps)
	if e.quant {
		e.quantInput(a, 0, a.xq1, a.xn1, h)
	}
	matmulNT(e.pool, a.q, a.xq1, e.linW(li, tQ), n, qd, h, false)
	matmulNT(e.pool, a.k, a.xq1, e.linW(li, tK), n, kvd, h, false)
	matmulNT(e.pool, a.v, a.xq1, e.linW(li, tV), n, kvd, h, false)
	hh := c.HeadDim / 2
	for t := 0; t < n; t++ {
		p := t % e.seq
		cs, sn := e.cos[p*hh:(p+1)*hh], e.sin[p*hh:(p+1)*hh]
		ropeApply(a.q[t*qd:(t+1)*qd], cs, sn, c.NumHeads, false)
		ropeApply(a.k[t*kvd:(t+1)*kvd], cs, sn, c.NumKVHeads, false)
	}
	e.attnFwd(a)
	if len(W[tAttnSubNorm]) > 0 {
		e.rmsFwd(a.an, a.inv2, a.att, W[tAttnSubNorm], eps)
	} else {
		copy(a.an, a.att)
	}
	if e.quant {
		e.quantInput(a, 1, a.aq, a.an, qd)
	}
	matmulNT(e.pool, a.mid, a.aq, e.linW(li, tO), n, h, qd, false)
	for i, v := range a.in {
		a.mid[i] += v
	}

	e.rmsFwd(a.xn3, a.inv3, a.mid, W[tFFNNorm], eps)
	if e.quant {
		e.quantInput(a, 2, a.xq3, a.xn3, h)
	}
	matmulNT(e.pool, a.g, a.xq3, e.linW(li, tGate), n, in, h, false)
	matmulNT(e.pool, a.u, a.xq3, e.linW(li, tUp), n, in, h, false)
	if c.HiddenAct == model.ActSiLU {
		e.parallelElems(len(a.f), func(lo, hi int) { siluMulFwd(a.f[lo:hi], a.g[lo:hi], a.u[lo:hi]) })
	} else {
		e.parallelElems(len(a.f), func(lo, hi int) { relu2MulFwd(a.f[lo:hi], a.g[lo:hi], a.u[lo:hi]) })
	}
	if len(W[tFFNSubNorm]) > 0 {
		e.rmsFwd(a.fn, a.inv4, a.f, W[tFFNSubNorm], eps)
	} else {
		copy(a.fn, a.f)
	}
	if e.quant {
		e.quantInput(a, 3, a.fq, a.fn, in)
	}
	matmulNT(e.pool, out, a.fq, e.linW(li, tDown), n, h, in, false)
	for i, v := range a.mid {
		out[i] += v
	}
}

// linearBwd handles y = x W^T (x: n x in, W: out x in) given dy: dx (+)= dy W
// (skipped when dx is nil) and grad dW += dy^T x, both without transposes.
func (e *engine[F]) linearBwd(dx, dy, W, dW, x []F, n, out, in int, acc bool) {
	matmulNN(e.pool, dW, dy, 1, out, x, in, out, in, n, true)
	if dx != nil {
		matmulNN(e.pool, dx, dy, out, 1, W, in, n, in, out, acc)
	}
}

// backward adds the gradients of the last forward's loss to e.grads.
func (e *engine[F]) backward() {
	c := e.cfg
	n := e.batch * e.seq
	h, V := c.HiddenSize, c.VocabSize
	// Head: logits = hn head^T.
	dhn := e.da[:n*h]
	e.linearBwd(dhn, e.logits, e.w.head, e.g.head, e.hn, n, V, h, false)
	e.rmsBwd(e.dres, e.g.norm, dhn, e.x, e.hinv, e.w.norm, false)
	for li := len(e.acts) - 1; li >= 0; li-- {
		e.layerBwd(li)
	}
	for t, id := range e.tokens {
		d, g := e.dres[t*h:(t+1)*h], e.g.embed[id*h:(id+1)*h]
		for i, v := range d {
			g[i] += v
		}
	}
}

func (e *engine[F]) layerBwd(li int) {
	c, a, W, G := e.cfg, &e.acts[li], e.w.layers[li], e.g.layers[li]
	n := e.batch * e.seq
	h, qd, kvd, in := c.HiddenSize, c.QDim(), c.KVDim(), c.IntermediateSize
	dres := e.dres

	// FFN: out = mid + down(fq).
	dfn := e.da[:n*in]
	e.linearBwd(dfn, dres, e.linW(li, tDown), G[tDown], a.fq, n, h, in, false)
	df := e.db[:n*in]
	if len(W[tFFNSubNorm]) > 0 {
		e.rmsBwd(df, G[tFFNSubNorm], dfn, a.f, a.inv4, W[tFFNSubNorm], false)
	} else {
		copy(df, dfn)
	}
	dg, du := e.dc[:n*in], e.dd[:n*in]
	if c.HiddenAct == model.ActSiLU {
		e.parallelElems(len(dg), func(lo, hi int) { siluMulBwd(dg[lo:hi], du[lo:hi], df[lo:hi], a.g[lo:hi], a.u[lo:hi]) })
	} else {
		e.parallelElems(len(dg), func(lo, hi int) { relu2MulBwd(dg[lo:hi], du[lo:hi], df[lo:hi], a.g[lo:hi], a.u[lo:hi]) })
	}
	dxn := e.da[:n*h]
	e.linearBwd(dxn, dg, e.linW(li, tGate), G[tGate], a.xq3, n, in, h, false)
	e.linearBwd(dxn, du, e.linW(li, tUp), G[tUp], a.xq3, n, in, h, true)
	e.rmsBwd(dres, G[tFFNNorm], dxn, a.mid, a.inv3, W[tFFNNorm], true)

	// Attention: mid = in + o(aq).
	dan := e.da[:n*qd]
	e.linearBwd(dan, dres, e.linW(li, tO), G[tO], a.aq, n, h, qd, false)
	datt := e.db[:n*qd]
	if len(W[tAttnSubNorm]) > 0 {
		e.rmsBwd(datt, G[tAttnSubNorm], dan, a.att, a.inv2, W[tAttnSubNorm], false)
	} else {
		copy(datt, dan)
	}
	dq, dk, dv := e.dc[:n*qd], e.dd[:n*kvd], e.de[:n*kvd]
	e.attnBwd(a, datt, dq, dk, dv)
	hh := c.HeadDim / 2
	for t := 0; t < n; t++ {
		p := t % e.seq
		cs, sn := e.cos[p*hh:(p+1)*hh], e.sin[p*hh:(p+1)*hh]
		ropeApply(dq[t*qd:(t+1)*qd], cs, sn, c.NumHeads, true)
		ropeApply(dk[t*kvd:(t+1)*kvd], cs, sn, c.NumKVHeads, true)
	}
	e.linearBwd(dxn, dq, e.linW(li, tQ), G[tQ], a.xq1, n, qd, h, false)
	e.linearBwd(dxn, dk, e.linW(li, tK), G[tK], a.xq1, n, kvd, h, true)
	e.linearBwd(dxn, dv, e.linW(li, tV), G[tV], a.xq1, n, kvd, h, true)
	e.rmsBwd(dres, G[tAttnNorm], dxn, a.in, a.inv1, W[tAttnNorm], true)
}
