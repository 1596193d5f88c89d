package train

import "math"

// adamW is AdamW with decoupled weight decay as PyTorch's torch.optim.AdamW
// computes it: p -= lr*wd*p, then the bias-corrected Adam update.
type adamW struct {
	beta1, beta2, eps float64
	m, v              []float32
	step              int // updates done
}

func newAdamW(n int, beta1, beta2, eps float64) *adamW {
	return &adamW{beta1: beta1, beta2: beta2, eps: eps, m: make([]float32, n), v: make([]float32, n)}
}

// optChunk is the unit of parallel work over the parameter vector; the
// gradient norm sums chunks in order, so it does not depend on threads.
const optChunk = 1 << 14

// gradNorm returns the L2 norm of g, accumulated in float64.
func gradNorm(p *pool, g []float32) float64 {
	chunks := (len(g) + optChunk - 1) / optChunk
	part := make([]float64, chunks)
	p.run(chunks, func(u int) {
		var s float64
		for _, v := range g[u*optChunk : min((u+1)*optChunk, len(g))] {
			s += float64(v) * float64(v)
		}
		part[u] = s
	})
	var s float64
	for _, v := range part {
		s += v
	}
	return math.Sqrt(s)
}

// update applies one AdamW step to params given grads (scaled by gscale, the
// clipping factor), with weight decay wd on the tensors whose spec has Decay.
func (o *adamW) update(p *pool, lay layout, params, grads []float32, lr, wd, gscale float64) {
	o.step++
	b1, b2 := float32(o.beta1), float32(o.beta2)
	bc1 := 1 - math.Pow(o.beta1, float64(o.step))
	bc2 := 1 - math.Pow(o.beta2, float64(o.step))
	stepSize := float32(lr / bc1)
	sqrtBC2 := float32(math.Sqrt(bc2))
	eps := float32(o.eps)
	gs := float32(gscale)
	for _, s := range lay.specs {
		decay := float32(1)
		if s.Decay {
			decay = float32(1 - lr*wd)
		}
		chunks := (s.N + optChunk - 1) / optChunk
		p.run(chunks, func(u int) {
			lo, hi := s.Off+u*optChunk, s.Off+min((u+1)*optChunk, s.N)
			pp, gg, mm, vv := params[lo:hi], grads[lo:hi], o.m[lo:hi], o.v[lo:hi]
			for i := range pp {
				g := gg[i] * gs
				m := b1*mm[i] + (1-b1)*g
				v := b2*vv[i] + (1-b2)*g*g
				mm[i], vv[i] = m, v
				denom := float32(math.Sqrt(float64(v)))/sqrtBC2 + eps
				pp[i] = pp[i]*decay - stepSize*m/denom
			}
		})
	}
}
