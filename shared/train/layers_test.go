package train

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

// fdCheck compares analytic gradients grad of loss with respect to x with
// central differences.
func fdCheck(t *testing.T, name string, x, grad []float64, loss func() float64) {
	t.Helper()
	const h = 1e-6
	worst := 0.0
	for i := range x {
		old := x[i]
		x[i] = old + h
		lp := loss()
		x[i] = old - h
		lm := loss()
		x[i] = old
		num := (lp - lm) / (2 * h)
		worst = max(worst, math.Abs(num-grad[i])/math.Max(1e-6, math.Abs(num)+math.Abs(grad[i])))
	}
	if worst > 1e-6 {
		t.Errorf("%s: worst relative gradient error %.3g, want < 1e-6", name, worst)
	}
}

func randVec(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = r.NormFloat64()
	}
	return v
}

// dotLoss is sum(y * r): its gradient with respect to y is r.
func dotLoss(y, r []float64) float64 {
	var s float64
	for i, v := range y {
		s += v * r[i]
	}
	return s
}

// TestLayerGradients checks each layer's backward pass on its own.
func TestLayerGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	p := newPool(2, kernels.FloatsFor(""))
	defer p.close()

	t.Run("rmsnorm", func(t *testing.T) {
		rows, n := 3, 6
		x, w, dy := randVec(r, rows*n), randVec(r, n), randVec(r, rows*n)
		y, inv := make([]float64, rows*n), make([]float64, rows)
		loss := func() float64 { rmsNormFwd(y, inv, x, w, 1e-5); return dotLoss(y, dy) }
		loss()
		dx, dw := make([]float64, rows*n), make([]float64, n)
		rmsNormBwd(dx, dw, dy, x, inv, w, false)
		fdCheck(t, "rmsnorm dx", x, dx, loss)
		fdCheck(t, "rmsnorm dw", w, dw, loss)
	})
	t.Run("rope", func(t *testing.T) {
		heads, hd, pos := 2, 8, 5
		cos, sin := ropeTables[float64](pos+1, hd, 10000)
		cs, sn := cos[pos*hd/2:(pos+1)*hd/2], sin[pos*hd/2:(pos+1)*hd/2]
		x, dy := randVec(r, heads*hd), randVec(r, heads*hd)
		loss := func() float64 { y := slices.Clone(x); ropeApply(y, cs, sn, heads, false); return dotLoss(y, dy) }
		dx := slices.Clone(dy)
		ropeApply(dx, cs, sn, heads, true)
		fdCheck(t, "rope dx", x, dx, loss)
	})
	t.Run("relu2", func(t *testing.T) {
		g, u, dy := randVec(r, 20), randVec(r, 20), randVec(r, 20)
		y := make([]float64, 20)
		loss := func() float64 { relu2MulFwd(y, g, u); return dotLoss(y, dy) }
		dg, du := make([]float64, 20), make([]float64, 20)
		relu2MulBwd(dg, du, dy, g, u)
		fdCheck(t, "relu2 dgate", g, dg, loss)
		fdCheck(t, "relu2 dup", u, du, loss)
	})
	t.Run("linear", func(t *testing.T) {
		n, out, in := 5, 7, 6
		e := newEngine[float64](tinyConfig(true), false, p, 2, 5)
		x, w, dy := randVec(r, n*in), randVec(r, out*in), randVec(r, n*out)
		y := make([]float64, n*out)
		loss := func() float64 { matmulNT(p, y, x, w, n, out, in, false); return dotLoss(y, dy) }
		dx, dw := make([]float64, n*in), make([]float64, out*in)
		e.linearBwd(dx, dy, w, dw, x, n, out, in, false)
		fdCheck(t, "linear dx", x, dx, loss)
		fdCheck(t, "linear dW", w, dw, loss)
	})
	t.Run("attention", func(t *testing.T) {
		c := tinyConfig(true) // 4 heads over 2 kv heads of 4
		e := newEngine[float64](c, false, p, 2, 5)
		a := &e.acts[0]
		copy(a.q, randVec(r, len(a.q)))
		copy(a.k, randVec(r, len(a.k)))
		copy(a.v, randVec(r, len(a.v)))
		dy := randVec(r, len(a.att))
		loss := func() float64 { e.attnFwd(a); return dotLoss(a.att, dy) }
		loss()
		dq, dk, dv := make([]float64, len(a.q)), make([]float64, len(a.k)), make([]float64, len(a.v))
		e.attnBwd(a, dy, dq, dk, dv)
		fdCheck(t, "attention dq", a.q, dq, loss)
		fdCheck(t, "attention dk", a.k, dk, loss)
		fdCheck(t, "attention dv", a.v, dv, loss)
	})
	t.Run("cross-entropy", func(t *testing.T) {
		rows, vocab := 4, 9
		x := randVec(r, rows*vocab)
		targets := []int{3, -1, 0, 8}
		l := make([]float64, rows)
		loss := func() float64 {
			g := slices.Clone(x)
			crossEntropy(p, g, l, targets, vocab, 1)
			return l[0] + l[1] + l[2] + l[3]
		}
		g := slices.Clone(x)
		crossEntropy(p, g, l, targets, vocab, 1)
		fdCheck(t, "cross-entropy dlogits", x, g, loss)
	})
}
