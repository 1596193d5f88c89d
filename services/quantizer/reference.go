package quantizer

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/safetensors"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// refLayer is one decoder block with full-precision linears: the engine
// layer's norms (whatever its family has) and the seven linears in
// model.LinQ..LinDown order.
type refLayer struct {
	norms *model.Layer
	lin   [model.NumLinears]denseRows
}

// denseRows holds a linear weight (out x in) whose rows are decoded to
// float32 on demand, so the reference keeps no full-precision copy of a
// large model: from float32 weights in memory, the checkpoint's
// (memory-mapped) float tensor, or s*T from a ternary matrix.
type denseRows struct {
	f    []float32          // float32 rows, or
	t    safetensors.Tensor // an F32/F16/BF16 tensor when Data is set, or
	m    *ternary.Matrix    // a ternary matrix
	cols int
}

// row decodes row o into dst (cols floats); tmp is scratch for ternary rows.
func (d denseRows) row(dst []float32, tmp []int8, o int) []int8 {
	if d.f != nil {
		copy(dst, d.f[o*d.cols:(o+1)*d.cols])
		return tmp
	}
	if d.t.Data != nil {
		size := d.t.DType.Size()
		r := safetensors.Tensor{Name: d.t.Name, DType: d.t.DType, Shape: []int{d.cols}, Data: d.t.Data[o*d.cols*size : (o+1)*d.cols*size]}
		_ = r.Float32Into(dst) // dtype and sizes were checked when d was made
		return tmp
	}
	tmp = d.m.Row(tmp[:0], o)
	s := d.m.Scale
	for i, v := range tmp {
		dst[i] = float32(v) * s
	}
	return tmp
}

// reference is the "before" model of the quality report: the model's
// family forward pass (every family of shared/model) with full-precision
// linear weights and the engine's per-token int8
// activation quantization, a float32 head, and a KV cache of one sequence.
// It favours clarity over speed (dense float matrix-vector products spread
// over threads goroutines); it is not safe for concurrent use.
type reference struct {
	cfg     model.Config
	embed   []float32
	norm    []float32
	head    denseRows
	layers  []refLayer
	threads int

	n      int         // cached positions
	kc, vc [][]float32 // per layer, n*KVDim
	invF   []float64   // RoPE inverse frequencies (global layers)
	invL   []float64   // those of sliding layers
}

func newReference(cfg model.Config, embed, norm, head []float32, layers []refLayer, threads int) *reference {

	if threads < 1 {
		threads = runtime.GOMAXPROCS(0)
	}
	invF := invFreq(cfg.HeadDim, cfg.RopeTheta, cfg.RopeScaling)
	invL := invF
	if cfg.RopeLocalTheta > 0 {
		invL = invFreq(cfg.HeadDim, cfg.RopeLocalTheta, nil)
	}
	return &reference{cfg: cfg, embed: embed, norm: norm, head: denseRows{f: head, cols: cfg.HiddenSize}, layers: layers, threads: threads,
		kc: make([][]float32, len(layers)), vc: make([][]float32, len(layers)), invF: invF, invL: invL}
}

// invFreq returns the RoPE inverse frequencies with rope_scaling applied
// (linear: divided by the factor; llama3: transformers'
// _compute_llama3_parameters), in float64.
func invFreq(hd int, theta float64, sc *model.RopeScaling) []float64 {
	inv := make([]float64, hd/2)
	for i := range inv {
		f := 1 / math.Pow(theta, float64(2*i)/float64(hd))
		if sc != nil && sc.Type == "linear" {
			f /= sc.Factor
		}
		if sc != nil && sc.Type == "factors" {
			f = f / float64(sc.Factors[i]) / sc.Factor
		}
		if sc != nil && sc.Type == "llama3" {
			old, wave := float64(sc.OriginalMaxPosition), 2*math.Pi/f
			switch {
			case wave > old/sc.LowFreqFactor:
				f /= sc.Factor
			case wave >= old/sc.HighFreqFactor:
				s := (old/wave - sc.LowFreqFactor) / (sc.HighFreqFactor - sc.LowFreqFactor)
				f = (1-s)*f/sc.Factor + s*f
			}
		}
		inv[i] = f
	}
	return inv
}

// reset empties the KV cache.
func (r *reference) reset() {
	r.n = 0
	for i := range r.kc {
		r.kc[i], r.vc[i] = r.kc[i][:0], r.vc[i][:0]
	}
}

// feed appends tokens to the sequence and returns their logits
// (len(tokens)*VocabSize). All tokens go through each layer together, so
// every weight row is decoded once per call.
func (r *reference) feed(ctx context.Context, tokens []int) ([]float32, error) {
	c := r.cfg
	if r.n+len(tokens) > c.MaxPositions {
		return nil, fmt.Errorf("reference: %d cached + %d tokens exceed max_position_embeddings = %d", r.n, len(tokens), c.MaxPositions)
	}
	n := len(tokens)
	h, qd, kvd, in, V := c.HiddenSize, c.QDim(), c.KVDim(), c.IntermediateSize, c.VocabSize
	x := make([]float32, n*h)
	es := c.EmbedScale()
	for t, id := range tokens {
		if id < 0 || id >= V {
			return nil, fmt.Errorf("reference: token %d: id %d out of range [0,%d)", t, id, V)
		}
		copy(x[t*h:(t+1)*h], r.embed[id*h:(id+1)*h])
		if es != 1 {
			for i := t * h; i < (t+1)*h; i++ {
				x[i] *= es
			}
		}
	}
	xn := make([]float32, n*max(h, qd, in))
	pn := make([]float32, n*max(h, qd, in))
	q, k, v := make([]float32, n*qd), make([]float32, n*kvd), make([]float32, n*kvd)
	att, tmp := make([]float32, n*qd), make([]float32, n*h)
	g, u := make([]float32, n*in), make([]float32, n*in)
	// norm sets dst to the RMSNorm (weights w) of each of the n rows of src.
	norm := func(dst, src, w []float32, width int, eps float32) []float32 {
		for t := 0; t < n; t++ {
			rmsNorm(dst[t*width:(t+1)*width], src[t*width:(t+1)*width], w, eps)
		}
		return dst[:n*width]
	}
	// lin runs linear i of layer L on the n rows of src (width floats):
	// its own norm first where the family has one, then the engine's int8
	// activation quantization, then the full-precision product into y.
	lin := func(L *refLayer, i int, y, src []float32, width int) {
		a := pn[:n*width]
		if pw := L.norms.ProjNorm[i]; pw != nil {
			norm(a, src, pw, width, c.ProjEps())
		} else {
			copy(a, src[:n*width])
		}
		for t := 0; t < n; t++ {
			actQuant(a[t*width : (t+1)*width])
		}
		r.matMul(y, L.lin[i], a, n)
	}
	for li := range r.layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		L := &r.layers[li]
		N := L.norms
		a := norm(xn, x, N.AttnNorm, h, c.RMSNormEps)
		lin(L, model.LinQ, q, a, h)
		lin(L, model.LinK, k, a, h)
		lin(L, model.LinV, v, a, h)
		inv, window := r.invF, 0
		if c.Sliding(li) {
			inv, window = r.invL, c.SlidingWindow
		}
		for t := 0; t < n; t++ {
			qt, kt := q[t*qd:(t+1)*qd], k[t*kvd:(t+1)*kvd]
			if N.QNorm != nil {
				for o := 0; o < qd; o += c.HeadDim {
					rmsNorm(qt[o:o+c.HeadDim], qt[o:o+c.HeadDim], N.QNorm, c.RMSNormEps)
				}
				for o := 0; o < kvd; o += c.HeadDim {
					rmsNorm(kt[o:o+c.HeadDim], kt[o:o+c.HeadDim], N.KNorm, c.RMSNormEps)
				}
			}
			r.rope(qt, r.n+t, inv)
			r.rope(kt, r.n+t, inv)
		}
		r.kc[li] = append(r.kc[li], k...)
		r.vc[li] = append(r.vc[li], v...)
		for t := 0; t < n; t++ {
			r.attend(att[t*qd:(t+1)*qd], q[t*qd:(t+1)*qd], r.kc[li], r.vc[li], r.n+t+1, window)
		}
		if N.AttnSubNorm != nil {
			norm(att, att, N.AttnSubNorm, qd, c.RMSNormEps)
		}
		lin(L, model.LinO, tmp, att, qd)
		if N.PostAttnNorm != nil {
			norm(tmp, tmp, N.PostAttnNorm, h, c.RMSNormEps)
		}
		addTo(x, tmp)
		a = norm(xn, x, N.FFNNorm, h, c.RMSNormEps)
		lin(L, model.LinGate, g, a, h)
		lin(L, model.LinUp, u, a, h)
		for i := range g {
			g[i] = activation(c.HiddenAct, g[i]) * u[i]
		}
		if N.FFNSubNorm != nil {
			norm(g, g, N.FFNSubNorm, in, c.RMSNormEps)
		}
		lin(L, model.LinDown, tmp, g, in)
		if N.PostFFNNorm != nil {
			norm(tmp, tmp, N.PostFFNNorm, h, c.RMSNormEps)
		}
		addTo(x, tmp)
	}
	for t := 0; t < n; t++ {
		rmsNorm(xn[t*h:(t+1)*h], x[t*h:(t+1)*h], r.norm, c.RMSNormEps)
	}
	logits := make([]float32, n*V)
	r.matMul(logits, r.head, xn[:n*h], n)
	r.n += n
	return logits, nil
}

// activation is the gated FFN's nonlinearity of the configuration.
func activation(act string, g float32) float32 {
	x := float64(g)
	switch act {
	case model.ActSiLU:
		return float32(x / (1 + math.Exp(-x)))
	case model.ActGELUTanh:
		return float32(0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x))))
	}
	r := max(g, 0)
	return r * r
}

// matMul sets y[t] = W x[t] for the n rows of x (y is n x rows), decoding
// each weight row once; rows are split over threads goroutines that it
// waits for.
func (r *reference) matMul(y []float32, w denseRows, x []float32, n int) {
	cols := w.cols
	rows := len(y) / n
	do := func(lo, hi int) {
		row := make([]float32, cols)
		var tmp []int8
		for o := lo; o < hi; o++ {
			tmp = w.row(row, tmp, o)
			for t := 0; t < n; t++ {
				y[t*rows+o] = dotF32(row, x[t*cols:(t+1)*cols])
			}
		}
	}
	workers := min(r.threads, max(1, rows*cols*n/(1<<16)))
	if workers <= 1 {
		do(0, rows)
		return
	}
	var wg sync.WaitGroup
	per := (rows + workers - 1) / workers
	for lo := 0; lo < rows; lo += per {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			do(lo, hi)
		}(lo, min(lo+per, rows))
	}
	wg.Wait()
}

// dotF32 is a float32 dot product with four independent accumulators.
func dotF32(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// rope rotates each head of v at position pos (rotate-half convention)
// with inverse frequencies inv.
func (r *reference) rope(v []float32, pos int, inv []float64) {
	hd, half := r.cfg.HeadDim, r.cfg.HeadDim/2
	for h0 := 0; h0 < len(v); h0 += hd {
		for i := 0; i < half; i++ {
			s, c := math.Sincos(float64(pos) * inv[i])
			a, b := v[h0+i], v[h0+i+half]
			v[h0+i] = a*float32(c) - b*float32(s)
			v[h0+i+half] = b*float32(c) + a*float32(s)
		}
	}
}

// attend computes causal attention of q over the n cached keys and values
// (the last window of them when window > 0), with grouped KV heads.
func (r *reference) attend(out, q, kc, vc []float32, n, window int) {
	c := r.cfg
	hd, kvd := c.HeadDim, c.KVDim()
	group := c.NumHeads / c.NumKVHeads
	scale := float64(c.AttnScale())
	first := 0
	if window > 0 && n > window {
		first = n - window
	}
	p := make([]float64, n)
	for h := 0; h < c.NumHeads; h++ {
		qh := q[h*hd : (h+1)*hd]
		ko := (h / group) * hd
		m := math.Inf(-1)
		for j := 0; j < first; j++ {
			p[j] = math.Inf(-1)
		}
		for j := first; j < n; j++ {
			kj := kc[j*kvd+ko : j*kvd+ko+hd]
			var s float64
			for i := range qh {
				s += float64(qh[i]) * float64(kj[i])
			}
			p[j] = s * scale
			m = max(m, p[j])
		}
		var sum float64
		for j := range p {
			p[j] = math.Exp(p[j] - m)
			sum += p[j]
		}
		oh := out[h*hd : (h+1)*hd]
		for i := range oh {
			var s float64
			for j := 0; j < n; j++ {
				s += p[j] * float64(vc[j*kvd+ko+i])
			}
			oh[i] = float32(s / sum)
		}
	}
}

func rmsNorm(dst, x, w []float32, eps float32) {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	inv := float32(1 / math.Sqrt(ss/float64(len(x))+float64(eps)))
	for i, v := range x {
		dst[i] = v * inv * w[i]
	}
}

// actQuant replaces x by its per-token absmax int8 quantization, dequantised,
// exactly as the engine's BitLinear inputs (kernels.QuantizeRow).
func actQuant(x []float32) {
	q := make([]int8, len(x))
	s, _ := kernels.QuantizeRow(q, x)
	for i, v := range q {
		x[i] = float32(v) / s
	}
}

func addTo(y, x []float32) {
	for i, v := range x {
		y[i] += v
	}
}
