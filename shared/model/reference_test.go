package model

import (
	"math"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// referenceHidden is a deliberately plain re-implementation of every
// family's decoder (no cache, no scratch reuse, float64 where it is free)
// that returns the final-norm hidden states of every position of ids. It
// follows the Hugging Face modeling code written out in docs/families.md,
// independently of forward.go.
func referenceHidden(t testing.TB, w *Weights, ids []int) [][]float64 {
	t.Helper()
	c := w.Config
	n, h, hd := len(ids), c.HiddenSize, c.HeadDim
	x := make([][]float64, n)
	for i, id := range ids {
		x[i] = make([]float64, h)
		for j := range x[i] {
			x[i][j] = float64(w.Embed[id*h+j]) * float64(c.EmbedScale())
		}
	}
	normEps := func(v []float64, g []float32, eps float32) []float64 {
		var ss float64
		for _, e := range v {
			ss += e * e
		}
		inv := 1 / math.Sqrt(ss/float64(len(v))+float64(eps))
		out := make([]float64, len(v))
		for i, e := range v {
			out[i] = float64(g[i]) * e * inv
		}
		return out
	}
	norm := func(v []float64, g []float32) []float64 { return normEps(v, g, c.RMSNormEps) }
	// bitlin quantises v per BitNet (absmax int8, half to even) after the
	// projection's own norm (when present) and multiplies.
	bitlin := func(v []float64, m *ternary.Matrix, pn []float32) []float64 {
		if pn != nil {
			v = normEps(v, pn, c.ProjEps())
		}
		var mx float64
		for _, e := range v {
			mx = math.Max(mx, math.Abs(e))
		}
		s := float64(float32(127 / math.Max(float64(float32(mx)), 1e-5)))
		q := make([]float64, m.Cols)
		for i, e := range v {
			q[i] = math.Max(-128, math.Min(127, math.RoundToEven(float64(float32(e)*float32(s)))))
		}
		tv := m.Unpack()
		out := make([]float64, m.Rows)
		for r := 0; r < m.Rows; r++ {
			var d float64
			for k := 0; k < m.Cols; k++ {
				d += float64(tv[r*m.Cols+k]) * q[k]
			}
			out[r] = d * float64(m.Scale) / s
		}
		return out
	}
	invFreq := func(theta float64, sc *RopeScaling) []float64 {
		f := make([]float64, hd/2)
		for i := range f {
			f[i] = 1 / math.Pow(theta, float64(2*i)/float64(hd))
			if sc == nil {
				continue
			}
			switch sc.Type {
			case "linear":
				f[i] /= sc.Factor
			case "llama3":
				wave := 2 * math.Pi / f[i]
				old := float64(sc.OriginalMaxPosition)
				switch {
				case wave > old/sc.LowFreqFactor:
					f[i] /= sc.Factor
				case wave >= old/sc.HighFreqFactor:
					s := (old/wave - sc.LowFreqFactor) / (sc.HighFreqFactor - sc.LowFreqFactor)
					f[i] = (1-s)*f[i]/sc.Factor + s*f[i]
				}
			}
		}
		return f
	}
	global := invFreq(c.RopeTheta, c.RopeScaling)
	local := global
	if c.RopeLocalTheta > 0 {
		local = invFreq(c.RopeLocalTheta, nil)
	}
	ropeApply := func(v []float64, heads, p int, freq []float64) {
		half := hd / 2
		for hh := 0; hh < heads; hh++ {
			for i := 0; i < half; i++ {
				f := float64(p) * freq[i]
				a, b := v[hh*hd+i], v[hh*hd+half+i]
				v[hh*hd+i] = a*math.Cos(f) - b*math.Sin(f)
				v[hh*hd+half+i] = b*math.Cos(f) + a*math.Sin(f)
			}
		}
	}
	headNorm := func(v []float64, heads int, g []float32) {
		for hh := 0; hh < heads; hh++ {
			copy(v[hh*hd:(hh+1)*hd], norm(v[hh*hd:(hh+1)*hd], g))
		}
	}
	act := func(g float64) float64 {
		switch c.HiddenAct {
		case ActSiLU:
			return g / (1 + math.Exp(-g))
		case ActGELUTanh:
			return 0.5 * g * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(g+0.044715*g*g*g)))
		}
		r := math.Max(g, 0)
		return r * r
	}
	scale := 1 / math.Sqrt(float64(hd))
	if c.QueryPreAttnScalar > 0 {
		scale = 1 / math.Sqrt(c.QueryPreAttnScalar)
	}
	qd := c.QDim()
	for li, L := range w.Layers {
		freq := global
		window := 0
		if c.Sliding(li) {
			freq, window = local, c.SlidingWindow
		}
		qs, ks, vs := make([][]float64, n), make([][]float64, n), make([][]float64, n)
		for i := range x {
			xn := norm(x[i], L.AttnNorm)
			qs[i] = bitlin(xn, L.Q, L.ProjNorm[LinQ])
			ks[i] = bitlin(xn, L.K, L.ProjNorm[LinK])
			vs[i] = bitlin(xn, L.V, L.ProjNorm[LinV])
			if L.QNorm != nil {
				headNorm(qs[i], c.NumHeads, L.QNorm)
				headNorm(ks[i], c.NumKVHeads, L.KNorm)
			}
			ropeApply(qs[i], c.NumHeads, i, freq)
			ropeApply(ks[i], c.NumKVHeads, i, freq)
		}
		group := c.NumHeads / c.NumKVHeads
		for i := range x {
			att := make([]float64, qd)
			first := 0
			if window > 0 {
				first = max(0, i-window+1)
			}
			for hh := 0; hh < c.NumHeads; hh++ {
				kh := hh / group
				sc := make([]float64, i+1)
				mx := math.Inf(-1)
				for j := first; j <= i; j++ {
					var d float64
					for e := 0; e < hd; e++ {
						d += qs[i][hh*hd+e] * ks[j][kh*hd+e]
					}
					sc[j] = d * scale
					mx = math.Max(mx, sc[j])
				}
				var sum float64
				for j := first; j <= i; j++ {
					sc[j] = math.Exp(sc[j] - mx)
					sum += sc[j]
				}
				for j := first; j <= i; j++ {
					for e := 0; e < hd; e++ {
						att[hh*hd+e] += sc[j] / sum * vs[j][kh*hd+e]
					}
				}
			}
			if L.AttnSubNorm != nil {
				att = norm(att, L.AttnSubNorm)
			}
			o := bitlin(att, L.O, L.ProjNorm[LinO])
			if L.PostAttnNorm != nil {
				o = norm(o, L.PostAttnNorm)
			}
			for e := range x[i] {
				x[i][e] += o[e]
			}
			xn := norm(x[i], L.FFNNorm)
			g := bitlin(xn, L.Gate, L.ProjNorm[LinGate])
			u := bitlin(xn, L.Up, L.ProjNorm[LinUp])
			for e := range g {
				g[e] = act(g[e]) * u[e]
			}
			if L.FFNSubNorm != nil {
				g = norm(g, L.FFNSubNorm)
			}
			d := bitlin(g, L.Down, L.ProjNorm[LinDown])
			if L.PostFFNNorm != nil {
				d = norm(d, L.PostFFNNorm)
			}
			for e := range x[i] {
				x[i][e] += d[e]
			}
		}
	}
	for i := range x {
		x[i] = norm(x[i], w.Norm)
	}
	return x
}

// referenceLogits is referenceHidden followed by the float head.
func referenceLogits(t testing.TB, w *Weights, ids []int) [][]float64 {
	t.Helper()
	c := w.Config
	h := c.HiddenSize
	head := w.HeadWeights()
	out := make([][]float64, len(ids))
	for i, xn := range referenceHidden(t, w, ids) {
		out[i] = make([]float64, c.VocabSize)
		for r := range out[i] {
			var d float64
			for e := 0; e < h; e++ {
				d += float64(head[r*h+e]) * xn[e]
			}
			out[i][r] = d
		}
	}
	return out
}
