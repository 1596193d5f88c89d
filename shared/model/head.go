package model

import (
	"fmt"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

// logits runs the final norm and the head for the tokens the steps ask for.
func (m *Model) logits(steps []Step) error {
	c, sc := m.cfg, &m.scratch
	h, vocab := c.HiddenSize, c.VocabSize
	rows := 0
	for _, st := range steps {
		if st.AllLogits {
			rows += len(st.Tokens)
		} else {
			rows++
		}
	}
	sc.hidden = grow(sc.hidden, rows*h)
	t, r := 0, 0
	for _, st := range steps {
		first := t
		if !st.AllLogits {
			first = t + len(st.Tokens) - 1
		}
		t += len(st.Tokens)
		r += copy(sc.hidden[r*h:], sc.x[first*h:t*h]) / h
	}
	m.fl.RMSNorm(sc.hidden, sc.hidden, m.norm, c.RMSNormEps)
	sc.logits = grow(sc.logits, rows*vocab)
	if m.head8 != nil || m.headP != nil {
		a := sc.act
		a.Reset(rows, h)
		if err := m.eng.Quantize(a, sc.hidden); err != nil {
			return fmt.Errorf("model: quantize head input: %w", err)
		}
		var err error
		if m.headP != nil {
			err = m.eng.MatMulPacked(sc.logits, m.headP, a)
		} else {
			err = m.eng.MatMulInt8(sc.logits, m.head8, a)
		}
		if err != nil {
			return fmt.Errorf("model: lm_head: %w", err)
		}
	} else {
		headF32(m.eng, m.fl, sc.logits, m.head, sc.hidden, rows, vocab, h)
	}
	r = 0
	for si := range steps {
		st := &steps[si]
		k := 1
		if st.AllLogits {
			k = len(st.Tokens)
		}
		st.Logits = grow(st.Logits, k*vocab)
		copy(st.Logits, sc.logits[r*vocab:(r+k)*vocab])
		r += k
	}
	return nil
}

// headF32 computes y[t*vocab+r] = dot(x[t], w[r]) in float32, vocabulary
// rows split over the engine's pool.
func headF32(e *kernels.Engine, fl kernels.Floats, y, w, x []float32, rows, vocab, h int) {
	e.Parallel(vocab, 1024, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			wr := w[r*h : (r+1)*h]
			for t := 0; t < rows; t++ {
				y[t*vocab+r] = fl.Dot(x[t*h:(t+1)*h], wr)
			}
		}
	})
}
