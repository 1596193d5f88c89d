package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// tinyConfig is a model small enough for finite differences.
func tinyConfig(tied bool) model.Config {
	return model.Config{
		Architecture: model.ArchBitNet, VocabSize: 11, HiddenSize: 8, IntermediateSize: 12,
		NumLayers: 2, NumHeads: 4, NumKVHeads: 2, HeadDim: 4, MaxPositions: 16,
		RopeTheta: 10000, RMSNormEps: 1e-5, HiddenAct: "relu2", TieWordEmbeddings: tied, BOSTokenID: -1,
	}
}

func randTokens(r *rand.Rand, n, vocab int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = r.IntN(vocab)
	}
	return out
}

// TestGradCheckSTE checks the quantised model's backward pass: its gradient
// must be the exact gradient of y = x_q W_q^T with the quantisers treated as
// identities, i.e. of the surrogate where each quantiser is x + (q(x0) - x0)
// frozen at the evaluation point.
func TestGradCheckSTE(t *testing.T) {
	c := tinyConfig(true)
	p := newPool(3, kernels.FloatsFor(""))
	defer p.close()
	e := newEngine[float64](c, true, p, 2, 5)
	e.freeze = true
	initParams(e.lay, e.params, 4, 0.3)
	r := rand.New(rand.NewPCG(5, 6))
	tokens := randTokens(r, 10, c.VocabSize)
	targets := randTokens(r, 10, c.VocabSize)
	l0, err := e.forward(tokens, targets, 1)
	if err != nil {
		t.Fatal(err)
	}
	e.backward()
	grad := append([]float64(nil), e.grads...)

	// The frozen surrogate reproduces the quantised forward at the point.
	q := newEngine[float64](c, true, p, 2, 5)
	copy(q.params, e.params)
	if lq, _ := q.forward(tokens, targets, 1); lq != l0 {
		t.Fatalf("quantised loss %v, frozen surrogate %v: want equal", lq, l0)
	}
	// The quantisers are active: full precision gives another loss.
	f := newEngine[float64](c, false, p, 2, 5)
	copy(f.params, e.params)
	if lf, _ := f.forward(tokens, targets, 1); math.Abs(lf-l0) < 1e-6 {
		t.Fatalf("full-precision loss %v equals the quantised %v: quantisation is not active", lf, l0)
	}
	const h = 1e-5
	for _, s := range e.lay.specs {
		worst := 0.0
		for i := s.Off; i < s.Off+s.N; i++ {
			old := e.params[i]
			e.params[i] = old + h
			e.wqStale = true
			lp, _ := e.forward(tokens, targets, 1)
			e.params[i] = old - h
			e.wqStale = true
			lm, _ := e.forward(tokens, targets, 1)
			e.params[i] = old
			num := (lp - lm) / (2 * h)
			worst = max(worst, math.Abs(num-grad[i])/math.Max(1e-4, math.Abs(num)+math.Abs(grad[i])))
		}
		if worst > 1e-5 {
			t.Errorf("%s: worst relative STE gradient error %.3g, want < 1e-5", s.Name, worst)
		}
	}
}

// TestGradCheckModel compares every parameter's analytic gradient of the
// full-precision model with central finite differences in float64.
func TestGradCheckModel(t *testing.T) {
	for _, tied := range []bool{false, true} {
		c := tinyConfig(tied)
		p := newPool(2, kernels.FloatsFor(""))
		defer p.close()
		e := newEngine[float64](c, false, p, 2, 5)
		initParams(e.lay, e.params, 1, 0.3)
		// Perturb the norms so their gradients are not trivially symmetric.
		r := rand.New(rand.NewPCG(2, 3))
		for _, s := range e.lay.specs {
			if s.Norm {
				for i := s.Off; i < s.Off+s.N; i++ {
					e.params[i] = 1 + 0.3*r.NormFloat64()
				}
			}
		}
		tokens := randTokens(r, 10, c.VocabSize)
		targets := randTokens(r, 10, c.VocabSize)
		targets[3] = -1 // ignored position
		if _, err := e.forward(tokens, targets, 1); err != nil {
			t.Fatal(err)
		}
		e.backward()
		grad := append([]float64(nil), e.grads...)
		const h = 1e-5
		for _, s := range e.lay.specs {
			worst, norm := 0.0, 0.0
			for i := s.Off; i < s.Off+s.N; i++ {
				norm += math.Abs(grad[i])
				old := e.params[i]
				e.params[i] = old + h
				lp, _ := e.forward(tokens, targets, 1)
				e.params[i] = old - h
				lm, _ := e.forward(tokens, targets, 1)
				e.params[i] = old
				num := (lp - lm) / (2 * h)
				diff := math.Abs(num-grad[i]) / math.Max(1e-4, math.Abs(num)+math.Abs(grad[i]))
				worst = max(worst, diff)
			}
			if norm == 0 {
				t.Errorf("tied=%v %s: gradient is zero", tied, s.Name)
			}
			if worst > 1e-5 {
				t.Errorf("tied=%v %s: worst relative gradient error %.3g, want < 1e-5", tied, s.Name, worst)
			}
		}
	}
}

// TestFloat32MatchesFloat64 checks the float32 engine (SIMD tiles where
// available: every width here is a multiple of 8) against the float64 one
// that the finite-difference checks validate.
func TestFloat32MatchesFloat64(t *testing.T) {
	c := tinyConfig(false)
	c.VocabSize, c.HiddenSize, c.IntermediateSize, c.NumHeads, c.NumKVHeads, c.HeadDim = 40, 32, 48, 4, 2, 8
	for _, quant := range []bool{false, true} {
		p := newPool(2, kernels.FloatsFor(""))
		defer p.close()
		e64 := newEngine[float64](c, quant, p, 2, 16)
		e32 := newEngine[float32](c, quant, p, 2, 16)
		initParams(e32.lay, e32.params, 9, 0.3)
		for i, v := range e32.params {
			e64.params[i] = float64(v)
		}
		r := rand.New(rand.NewPCG(10, 11))
		tokens, targets := randTokens(r, 32, c.VocabSize), randTokens(r, 32, c.VocabSize)
		l64, err := e64.forward(tokens, targets, 1)
		if err != nil {
			t.Fatal(err)
		}
		l32, _ := e32.forward(tokens, targets, 1)
		if math.Abs(l32-l64) > 1e-4*l64 {
			t.Errorf("quant=%v: float32 loss %v, float64 %v", quant, l32, l64)
		}
		if quant {
			continue // a flipped rounding in a quantiser moves gradients legitimately
		}
		e64.backward()
		e32.backward()
		for _, s := range e32.lay.specs {
			var num, den float64
			for i := s.Off; i < s.Off+s.N; i++ {
				d := float64(e32.grads[i]) - e64.grads[i]
				num += d * d
				den += e64.grads[i] * e64.grads[i]
			}
			if rel := math.Sqrt(num / den); rel > 1e-4 {
				t.Errorf("%s: float32 gradient differs from float64 by %.2g (relative L2), want < 1e-4", s.Name, rel)
			}
		}
	}
}
