package model

import (
	"math"
	"testing"
)

// referenceLogits is a deliberately plain re-implementation of
// BitNetForCausalLM (no cache, no scratch reuse, float64 where it is free)
// that returns the logits of every position of ids.
func referenceLogits(t testing.TB, w *Weights, ids []int) [][]float64 {
	t.Helper()
	c := w.Config
	n, h, hd := len(ids), c.HiddenSize, c.HeadDim
	x := make([][]float64, n)
	for i, id := range ids {
		x[i] = make([]float64, h)
		for j := range x[i] {
			x[i][j] = float64(w.Embed[id*h+j])
		}
	}
	norm := func(v []float64, g []float32) []float64 {
		var ss float64
		for _, e := range v {
			ss += e * e
		}
		inv := 1 / math.Sqrt(ss/float64(len(v))+float64(c.RMSNormEps))
		out := make([]float64, len(v))
		for i, e := range v {
			out[i] = float64(g[i]) * e * inv
		}
		return out
	}
	// bitlin quantises v per BitNet (absmax int8, half to even) and multiplies.
	bitlin := func(v []float64, m interface {
		Unpack() []int8
	}, rows, cols int, scale float32) []float64 {
		var mx float64
		for _, e := range v {
			mx = math.Max(mx, math.Abs(e))
		}
		s := float64(float32(127 / math.Max(float64(float32(mx)), 1e-5)))
		q := make([]float64, cols)
		for i, e := range v {
			q[i] = math.Max(-128, math.Min(127, math.RoundToEven(float64(float32(e)*float32(s)))))
		}
		tv := m.Unpack()
		out := make([]float64, rows)
		for r := 0; r < rows; r++ {
			var d float64
			for k := 0; k < cols; k++ {
				d += float64(tv[r*cols+k]) * q[k]
			}
			out[r] = d * float64(scale) / s
		}
		return out
	}
	ropeApply := func(v []float64, heads, p int) {
		half := hd / 2
		for hh := 0; hh < heads; hh++ {
			for i := 0; i < half; i++ {
				f := float64(p) / math.Pow(c.RopeTheta, float64(2*i)/float64(hd))
				a, b := v[hh*hd+i], v[hh*hd+half+i]
				v[hh*hd+i] = a*math.Cos(f) - b*math.Sin(f)
				v[hh*hd+half+i] = b*math.Cos(f) + a*math.Sin(f)
			}
		}
	}
	qd, kvd, in := c.QDim(), c.KVDim(), c.IntermediateSize
	for _, L := range w.Layers {
		qs, ks, vs := make([][]float64, n), make([][]float64, n), make([][]float64, n)
		for i := range x {
			xn := norm(x[i], L.AttnNorm)
			qs[i] = bitlin(xn, L.Q, qd, h, L.Q.Scale)
			ks[i] = bitlin(xn, L.K, kvd, h, L.K.Scale)
			vs[i] = bitlin(xn, L.V, kvd, h, L.V.Scale)
			ropeApply(qs[i], c.NumHeads, i)
			ropeApply(ks[i], c.NumKVHeads, i)
		}
		group := c.NumHeads / c.NumKVHeads
		for i := range x {
			att := make([]float64, qd)
			for hh := 0; hh < c.NumHeads; hh++ {
				kh := hh / group
				sc := make([]float64, i+1)
				mx := math.Inf(-1)
				for j := 0; j <= i; j++ {
					var d float64
					for e := 0; e < hd; e++ {
						d += qs[i][hh*hd+e] * ks[j][kh*hd+e]
					}
					sc[j] = d / math.Sqrt(float64(hd))
					mx = math.Max(mx, sc[j])
				}
				var sum float64
				for j := range sc {
					sc[j] = math.Exp(sc[j] - mx)
					sum += sc[j]
				}
				for j := range sc {
					for e := 0; e < hd; e++ {
						att[hh*hd+e] += sc[j] / sum * vs[j][kh*hd+e]
					}
				}
			}
			o := bitlin(norm(att, L.AttnSubNorm), L.O, h, qd, L.O.Scale)
			for e := range x[i] {
				x[i][e] += o[e]
			}
			xn := norm(x[i], L.FFNNorm)
			g := bitlin(xn, L.Gate, in, h, L.Gate.Scale)
			u := bitlin(xn, L.Up, in, h, L.Up.Scale)
			for e := range g {
				r := math.Max(g[e], 0)
				g[e] = r * r * u[e]
			}
			d := bitlin(norm(g, L.FFNSubNorm), L.Down, h, in, L.Down.Scale)
			for e := range x[i] {
				x[i][e] += d[e]
			}
		}
	}
	head := w.HeadWeights()
	out := make([][]float64, n)
	for i := range x {
		xn := norm(x[i], w.Norm)
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
