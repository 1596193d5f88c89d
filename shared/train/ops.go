package train

import (
	"math"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// rmsNormFwd writes w * x / sqrt(mean(x^2) + eps) per row of len(w) into y and
// the inverse RMS of each row into inv, with the float ops of package model
// (sum of squares in float64).
func rmsNormFwd[F Float](y, inv, x, w []F, eps float64) {
	n := len(w)
	for r := 0; r < len(inv); r++ {
		xr, yr := x[r*n:(r+1)*n], y[r*n:(r+1)*n]
		var ss float64
		for _, v := range xr {
			ss += float64(v) * float64(v)
		}
		variance := F(ss / float64(n))
		iv := F(1 / math.Sqrt(float64(variance+F(eps))))
		inv[r] = iv
		for i, v := range xr {
			yr[i] = w[i] * (v * iv)
		}
	}
}

// rmsNormBwd sets dx (or adds to it with acc) and adds to dw the gradients of
// rmsNormFwd given dy. Rows are summed into dw in order.
func rmsNormBwd[F Float](dx, dw, dy, x, inv, w []F, acc bool) {
	n := len(w)
	for r := 0; r < len(inv); r++ {
		xr, dyr, dxr := x[r*n:(r+1)*n], dy[r*n:(r+1)*n], dx[r*n:(r+1)*n]
		iv := inv[r]
		var dot F
		for i, v := range xr {
			g := dyr[i]
			dw[i] += g * v * iv
			dot += g * w[i] * v
		}
		c := dot * iv * iv * iv / F(n)
		for i, v := range xr {
			d := dyr[i]*w[i]*iv - v*c
			if acc {
				dxr[i] += d
			} else {
				dxr[i] = d
			}
		}
	}
}

// ropeTables returns cos and sin (positions x headDim/2) computed with the
// float32 ops of package model's rotary tables.
func ropeTables[F Float](positions, headDim int, theta float64) (cos, sin []F) {
	h := headDim / 2
	cos, sin = make([]F, positions*h), make([]F, positions*h)
	for i := 0; i < h; i++ {
		exp := float32(2*i) / float32(headDim)
		inv := 1 / float32(math.Pow(theta, float64(exp)))
		for p := 0; p < positions; p++ {
			a := float32(p) * inv
			cos[p*h+i] = F(float32(math.Cos(float64(a))))
			sin[p*h+i] = F(float32(math.Sin(float64(a))))
		}
	}
	return cos, sin
}

// ropeApply rotates the heads of one token's vector x (rotate-half) by the
// angles of row cs, sn; inverse applies the transposed rotation (the
// backward pass of the forward rotation).
func ropeApply[F Float](x, cs, sn []F, heads int, inverse bool) {
	h := len(cs)
	for hd := 0; hd < heads; hd++ {
		a, b := x[hd*2*h:hd*2*h+h], x[hd*2*h+h:(hd+1)*2*h]
		for i := range a {
			x1, x2 := a[i], b[i]
			if inverse {
				a[i] = x1*cs[i] + x2*sn[i]
				b[i] = x2*cs[i] - x1*sn[i]
			} else {
				a[i] = x1*cs[i] - x2*sn[i]
				b[i] = x2*cs[i] + x1*sn[i]
			}
		}
	}
}

// relu2MulFwd writes relu(g)^2 * u into y.
func relu2MulFwd[F Float](y, g, u []F) {
	for i, v := range g {
		if v > 0 {
			y[i] = v * v * u[i]
		} else {
			y[i] = 0
		}
	}
}

// relu2MulBwd writes the gradients of relu2MulFwd into dg and du.
func relu2MulBwd[F Float](dg, du, dy, g, u []F) {
	for i, v := range g {
		if v > 0 {
			dg[i] = 2 * v * u[i] * dy[i]
			du[i] = v * v * dy[i]
		} else {
			dg[i], du[i] = 0, 0
		}
	}
}

// siluMulFwd writes silu(g) * u into y, silu(g) = g / (1 + exp(-g)).
func siluMulFwd[F Float](y, g, u []F) {
	for i, v := range g {
		y[i] = F(float64(v)/(1+math.Exp(-float64(v)))) * u[i]
	}
}

// siluMulBwd writes the gradients of siluMulFwd into dg and du:
// d silu(g)/dg = sig(g) (1 + g (1 - sig(g))).
func siluMulBwd[F Float](dg, du, dy, g, u []F) {
	for i, v := range g {
		x := float64(v)
		sig := 1 / (1 + math.Exp(-x))
		du[i] = F(x*sig) * dy[i]
		dg[i] = F(sig*(1+x*(1-sig))) * u[i] * dy[i]
	}
}

// quantActs writes the dequantised per-token int8 activations of x (rows of
// cols) into y: q/scale with q, scale exactly as kernels.QuantizeRow.
func quantActs[F Float](p *pool, y, x []F, rows, cols int) {
	p.run((rows+15)/16, func(u int) {
		q := make([]int8, cols)
		xf := make([]float32, cols)
		for r := u * 16; r < min(u*16+16, rows); r++ {
			xr, yr := x[r*cols:(r+1)*cols], y[r*cols:(r+1)*cols]
			for i, v := range xr {
				xf[i] = float32(v)
			}
			scale, _ := kernels.QuantizeRow(q, xf)
			for i, v := range q {
				yr[i] = F(float32(v) / scale)
			}
		}
	})
}

// quantWeights writes the dequantised ternary weights of w (rows x cols)
// into y: T * Scale with T and Scale exactly as ternary.Quantize.
func quantWeights[F Float](y, w []F, rows, cols int) error {
	wf := make([]float32, len(w))
	for i, v := range w {
		wf[i] = float32(v)
	}
	m, err := ternary.Quantize(rows, cols, wf)
	if err != nil {
		return err
	}
	row := make([]int8, 0, cols)
	s := F(m.Scale)
	for r := 0; r < rows; r++ {
		row = m.Row(row[:0], r)
		yr := y[r*cols : (r+1)*cols]
		for i, t := range row {
			yr[i] = F(t) * s
		}
	}
	return nil
}

// crossEntropy turns logits (rows x vocab) into their gradient in place:
// (softmax - onehot(target)) * scale, and returns each row's loss (natural
// log) in loss. Rows with target < 0 are ignored (zero gradient, zero loss).
func crossEntropy[F Float](p *pool, logits []F, loss []float64, targets []int, vocab int, scale F) {
	p.run((len(targets)+7)/8, func(u int) {
		for r := u * 8; r < min(u*8+8, len(targets)); r++ {
			row := logits[r*vocab : (r+1)*vocab]
			tg := targets[r]
			if tg < 0 {
				clear(row)
				loss[r] = 0
				continue
			}
			m := row[0]
			for _, v := range row {
				m = max(m, v)
			}
			var s float64
			for _, v := range row {
				s += math.Exp(float64(v - m))
			}
			loss[r] = math.Log(s) - float64(row[tg]-m)
			is := 1 / s
			for i, v := range row {
				row[i] = F(math.Exp(float64(v-m))*is) * scale
			}
			row[tg] -= scale
		}
	})
}
