package model

import "math"

// rope holds the rotary tables of the HF rotate-half convention: for position
// p and i < HeadDim/2, angle = p * inv_freq[i] with
// inv_freq[i] = 1 / theta^(2i/HeadDim), all rounded to float32 as
// transformers computes them. Tables grow on demand (a config may allow far
// more positions than any sequence uses); Forward's lock guards them.
type rope struct {
	half     int
	inv      []float32
	cos, sin []float32 // positions x half
}

// ropeChunk is the table growth unit in positions.
const ropeChunk = 1024

func newRope(headDim int, theta float64, sc *RopeScaling) rope {
	h := headDim / 2
	r := rope{half: h, inv: make([]float32, h)}
	for i := range r.inv {
		exp := float32(2*i) / float32(headDim)
		r.inv[i] = 1 / float32(math.Pow(theta, float64(exp)))
	}
	if sc != nil {
		scaleInvFreq(r.inv, sc)
	}
	return r
}

// scaleInvFreq applies rope_scaling to the inverse frequencies in float32,
// as transformers' _compute_linear_scaling_rope_parameters and
// _compute_llama3_parameters do.
func scaleInvFreq(inv []float32, sc *RopeScaling) {
	f := float32(sc.Factor)
	switch sc.Type {
	case "linear":
		for i := range inv {
			inv[i] /= f
		}
	case "factors": // llama.cpp's freq_factors: theta / factor, then the linear scale
		for i := range inv {
			inv[i] = inv[i] / sc.Factors[i] / f
		}
	case "llama3":
		old := float32(sc.OriginalMaxPosition)
		lo, hi := float32(sc.LowFreqFactor), float32(sc.HighFreqFactor)
		lowWave, highWave := old/lo, old/hi
		for i, v := range inv {
			wave := float32(2*math.Pi) / v
			switch {
			case wave > lowWave: // low frequencies: scaled
				inv[i] = v / f
			case wave < highWave: // high frequencies: kept
			default: // in between: interpolated
				smooth := (old/wave - lo) / (hi - lo)
				inv[i] = (1-smooth)*v/f + smooth*v
			}
		}
	}
}

// ensure extends the tables to cover positions [0, n).
func (r *rope) ensure(n int) {
	have := len(r.cos) / r.half
	if n <= have {
		return
	}
	n = (n + ropeChunk - 1) / ropeChunk * ropeChunk
	h := r.half
	cos, sin := make([]float32, n*h), make([]float32, n*h)
	copy(cos, r.cos)
	copy(sin, r.sin)
	for p := have; p < n; p++ {
		for i, f := range r.inv {
			a := float32(p) * f
			cos[p*h+i] = float32(math.Cos(float64(a)))
			sin[p*h+i] = float32(math.Sin(float64(a)))
		}
	}
	r.cos, r.sin = cos, sin
}

// apply rotates every head of x (heads*2*half floats) for position p, which
// ensure must have covered.
func (r *rope) apply(x []float32, heads, p int) {
	h := r.half
	cos, sin := r.cos[p*h:(p+1)*h], r.sin[p*h:(p+1)*h]
	for hd := 0; hd < heads; hd++ {
		v := x[hd*2*h : (hd+1)*2*h]
		a, b := v[:h], v[h:2*h]
		for i := range a {
			x1, x2 := a[i], b[i]
			a[i] = float32(x1*cos[i]) - float32(x2*sin[i])
			b[i] = float32(x2*cos[i]) + float32(x1*sin[i])
		}
	}
}
