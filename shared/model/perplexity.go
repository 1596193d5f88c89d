package model

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// PerplexityResult is the score of a token sequence.
type PerplexityResult struct {
	Tokens  int     `json:"tokens"`   // tokens scored
	NLLMean float64 `json:"nll_mean"` // mean negative log-likelihood (natural log)
	PPL     float64 `json:"ppl"`      // exp(NLLMean)
}

// scoreChunk bounds the tokens per Forward while scoring, so the logits of a
// long window (tokens x vocab floats) never have to be held at once.
const scoreChunk = 64

// Perplexity splits tokens into windows of window tokens (0: one window up to
// max_position_embeddings) and scores every token after the first of each
// window given its prefix in that window.
func (m *Model) Perplexity(ctx context.Context, tokens []int, window int) (PerplexityResult, error) {
	if m == nil {
		return PerplexityResult{}, errors.New("model: perplexity on a nil model")
	}
	if window == 0 {
		window = min(len(tokens), m.cfg.MaxPositions)
	}
	if window < 2 || window > m.cfg.MaxPositions {
		return PerplexityResult{}, fmt.Errorf("%w: window %d must be in [2, max_position_embeddings = %d]", ErrInput, window, m.cfg.MaxPositions)
	}
	if len(tokens) < 2 {
		return PerplexityResult{}, fmt.Errorf("%w: %d tokens, need at least 2 to score", ErrInput, len(tokens))
	}
	for i, id := range tokens {
		if id < 0 || id >= m.cfg.VocabSize {
			return PerplexityResult{}, fmt.Errorf("%w: token %d: id %d out of range [0,%d)", ErrInput, i, id, m.cfg.VocabSize)
		}
	}
	var sum float64
	n := 0
	seq := m.NewSequence()
	st := []Step{{Seq: seq, AllLogits: true}}
	vocab := m.cfg.VocabSize
	for w0 := 0; w0+1 < len(tokens); w0 += window {
		win := tokens[w0:min(w0+window, len(tokens))]
		seq.Reset()
		for c0 := 0; c0 < len(win)-1; c0 += scoreChunk {
			// Feed tokens [c0, c1) and score their successors.
			c1 := min(c0+scoreChunk, len(win)-1)
			st[0].Tokens = win[c0:c1]
			if err := m.Forward(ctx, st); err != nil {
				return PerplexityResult{}, err
			}
			for i := c0; i < c1; i++ {
				sum += nll(st[0].Logits[(i-c0)*vocab:(i-c0+1)*vocab], win[i+1])
				n++
			}
		}
	}
	mean := sum / float64(n)
	return PerplexityResult{Tokens: n, NLLMean: mean, PPL: math.Exp(mean)}, nil
}

// nll returns -log softmax(logits)[id], accumulated in float64.
func nll(logits []float32, id int) float64 {
	m := float32(math.Inf(-1))
	for _, v := range logits {
		m = max(m, v)
	}
	var s float64
	for _, v := range logits {
		s += math.Exp(float64(v - m))
	}
	return math.Log(s) - float64(logits[id]-m)
}
