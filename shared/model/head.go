package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

// logits runs the final norm and the head for the tokens the steps ask for,
// and pools the final states of Pool steps.
func (m *Model) logits(steps []Step) error {
	c, sc := m.cfg, &m.scratch
	h, vocab := c.HiddenSize, c.VocabSize
	rows := 0
	for _, st := range steps {
		switch {
		case st.Pool && c.Pooling == PoolMean:
			rows += len(st.Tokens)
		case st.AllLogits && !st.Pool:
			rows += len(st.Tokens)
		default:
			rows++
		}
	}
	sc.hidden = grow(sc.hidden, rows*h)
	t, r := 0, 0
	for _, st := range steps {
		first := t
		if !st.AllLogits && !(st.Pool && c.Pooling == PoolMean) {
			first = t + len(st.Tokens) - 1
		}
		t += len(st.Tokens)
		r += copy(sc.hidden[r*h:], sc.x[first*h:t*h]) / h
	}
	rmsNorm(sc.hidden, sc.hidden, m.norm, c.RMSNormEps)
	// Pooled steps take their rows out; the head runs on the others.
	r, kept := 0, 0
	for si := range steps {
		st := &steps[si]
		k := 1
		if st.AllLogits || (st.Pool && c.Pooling == PoolMean) {
			k = len(st.Tokens)
		}
		if !st.Pool {
			copy(sc.hidden[kept*h:], sc.hidden[r*h:(r+k)*h])
			kept += k
			r += k
			continue
		}
		st.Hidden = grow(st.Hidden, h)
		clear(st.Hidden)
		for i := r; i < r+k; i++ {
			addTo(st.Hidden, sc.hidden[i*h:(i+1)*h])
		}
		r += k
	}
	rows = kept
	if rows == 0 {
		return nil
	}
	sc.hidden = sc.hidden[:rows*h]
	sc.logits = grow(sc.logits, rows*vocab)
	if m.head8 != nil {
		a := sc.act
		a.Reset(rows, h)
		if err := m.eng.Quantize(a, sc.hidden); err != nil {
			return fmt.Errorf("model: quantize head input: %w", err)
		}
		if err := m.eng.MatMulInt8(sc.logits, m.head8, a); err != nil {
			return fmt.Errorf("model: lm_head: %w", err)
		}
	} else {
		headF32(m.eng, sc.logits, m.head, sc.hidden, rows, vocab, h)
	}
	r = 0
	for si := range steps {
		st := &steps[si]
		if st.Pool {
			continue
		}
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
func headF32(e *kernels.Engine, y, w, x []float32, rows, vocab, h int) {
	e.Parallel(vocab, 1024, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			wr := w[r*h : (r+1)*h]
			for t := 0; t < rows; t++ {
				y[t*vocab+r] = dot(x[t*h:(t+1)*h], wr)
			}
		}
	})
}

// FinishEmbedding turns a pooled state (Step.Hidden, summed over the chunks
// of a sequence of tokens tokens) into the model's embedding in place: the
// mean for PoolMean, then L2 normalisation when the configuration asks.
func FinishEmbedding(c Config, v []float32, tokens int) {
	if c.Pooling == PoolMean && tokens > 0 {
		scaleTo(v, 1/float32(tokens))
	}
	if c.NormalizeEmbeddings {
		NormalizeL2(v)
	}
}

// NormalizeL2 scales v to unit Euclidean length (sum of squares in
// float64); a zero vector stays zero.
func NormalizeL2(v []float32) {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	if ss == 0 {
		return
	}
	// torch.nn.functional.normalize divides by max(norm, 1e-12).
	scaleTo(v, float32(1/max(math.Sqrt(ss), 1e-12)))
}

// EmbedIDs tokenizes text for embedding: EmbedPrefix, the text's tokens
// (special-token strings in it are plain text) and EmbedSuffix.
func EmbedIDs(c Config, tok *tokenizer.Tokenizer, text string) []int {
	ids := append(slices.Clip(c.EmbedPrefix), tok.EncodeOrdinary(text)...)
	return append(ids, c.EmbedSuffix...)
}

// Embed returns the embedding of the tokens ids (see EmbedIDs): the final
// hidden states pooled and normalised as the configuration says
// (Config.Pooling, NormalizeEmbeddings). The tokens run in chunks through
// their own sequence; Forward calls of other sequences may interleave.
func (m *Model) Embed(ctx context.Context, ids []int) ([]float32, error) {
	if m == nil {
		return nil, errors.New("model: embed on a nil model")
	}
	if !m.cfg.IsEmbedding() {
		return nil, fmt.Errorf("%w: %s is not an embedding model (no pooling)", ErrInput, m.cfg.Architecture)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: no tokens to embed", ErrInput)
	}
	seq := m.NewSequence()
	st := []Step{{Seq: seq, Pool: true}}
	sum := make([]float32, m.cfg.HiddenSize)
	for c0 := 0; c0 < len(ids); c0 += embedChunk {
		st[0].Tokens = ids[c0:min(c0+embedChunk, len(ids))]
		if err := m.Forward(ctx, st); err != nil {
			return nil, err
		}
		if m.cfg.Pooling == PoolMean {
			addTo(sum, st[0].Hidden)
		} else {
			copy(sum, st[0].Hidden)
		}
	}
	FinishEmbedding(m.cfg, sum, len(ids))
	return sum, nil
}

// embedChunk bounds the tokens per Forward in Embed (scratch memory).
const embedChunk = 256
