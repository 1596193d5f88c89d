package quantizer

import (
	"context"
	"fmt"
	"math"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// evalChunk bounds the tokens per forward call while evaluating, so logits
// (tokens x vocab floats) stay small and cancellation is checked often.
const evalChunk = 32

// builtinCalibration is the default calibration text: plain English prose
// (the opening of Newton's Opticks, public domain).
const builtinCalibration = `My Design in this Book is not to explain the Properties of Light by Hypotheses, ` +
	`but to propose and prove them by Reason and Experiments: In order to which I shall premise ` +
	`the following Definitions and Axioms. By the Rays of Light I understand its least Parts, ` +
	`and those as well Successive in the same Lines, as Contemporary in several Lines. For it is ` +
	`manifest that Light consists of Parts, both Successive and Contemporary; because in the same ` +
	`place you may stop that which comes one moment, and let pass that which comes presently after; ` +
	`and in the same time you may stop it in any one place, and let it pass in any other. ` +
	`Refrangibility of the Rays of Light, is their Disposition to be refracted or turned out of their ` +
	`Way in passing out of one transparent Body or Medium into another.`

// evalResult is the calibration part of a report.
type evalResult struct {
	pplBefore, pplAfter, meanKL, top1 float64
	tokens                            int
}

// scorer returns the logits of tokens appended to its current sequence.
type scorer interface {
	reset()
	feed(ctx context.Context, tokens []int) ([]float32, error)
}

// engineScorer scores with the inference engine.
type engineScorer struct {
	m   *model.Model
	seq *model.Sequence
}

func (s *engineScorer) reset() { s.seq.Reset() }

func (s *engineScorer) feed(ctx context.Context, tokens []int) ([]float32, error) {
	st := []model.Step{{Seq: s.seq, Tokens: tokens, AllLogits: true}}
	if err := s.m.Forward(ctx, st); err != nil {
		return nil, err
	}
	return st[0].Logits, nil
}

// evaluate compares the reference model with the GGUF file at path (loaded
// by the engine with a float32 head, so only the stored weights differ) on
// text.
func evaluate(ctx context.Context, before *reference, path string, tok *tokenizer.Tokenizer, text string, c *Calibration, threads int, progress func(done, total int)) (evalResult, error) {
	w, _, err := model.LoadWeights(path)
	if err != nil {
		return evalResult{}, fmt.Errorf("evaluate: reload %s: %w", path, err)
	}
	eng, err := kernels.New(kernels.WithThreads(threads))
	if err != nil {
		return evalResult{}, fmt.Errorf("evaluate: %w", err)
	}
	defer eng.Close()
	m, err := model.New(w, tok, model.WithEngine(eng), model.WithHeadInt8(false))
	if err != nil {
		return evalResult{}, fmt.Errorf("evaluate: %w", err)
	}
	defer m.Close()
	cfg := m.Config()
	tokens := tok.Encode(text)
	if cfg.BOSTokenID >= 0 && cfg.BOSTokenID < cfg.VocabSize && (len(tokens) == 0 || tokens[0] != cfg.BOSTokenID) {
		tokens = append([]int{cfg.BOSTokenID}, tokens...)
	}
	tokens = tokens[:min(len(tokens), c.MaxTokens)]
	window := min(c.ContextLength, cfg.MaxPositions)
	return compare(ctx, before, &engineScorer{m: m, seq: m.NewSequence()}, tokens, window, cfg.VocabSize, progress)
}

// compare scores tokens in windows of window tokens with both models: every
// token after the first of a window is predicted from its prefix there.
func compare(ctx context.Context, before, after scorer, tokens []int, window, vocab int, progress func(done, total int)) (evalResult, error) {
	total := 0
	for w0 := 0; w0+1 < len(tokens); w0 += window {
		total += min(window, len(tokens)-w0) - 1
	}
	if total == 0 {
		return evalResult{}, nil // nothing to score: the report keeps zeros
	}
	var nllB, nllA, kl float64
	agree, n := 0, 0
	lpB, lpA := make([]float64, vocab), make([]float64, vocab)
	for w0 := 0; w0+1 < len(tokens); w0 += window {
		win := tokens[w0:min(w0+window, len(tokens))]
		before.reset()
		after.reset()
		for c0 := 0; c0 < len(win)-1; c0 += evalChunk {
			c1 := min(c0+evalChunk, len(win)-1)
			lb, err := before.feed(ctx, win[c0:c1])
			if err != nil {
				return evalResult{}, fmt.Errorf("evaluate before: %w", err)
			}
			la, err := after.feed(ctx, win[c0:c1])
			if err != nil {
				return evalResult{}, fmt.Errorf("evaluate after: %w", err)
			}
			for i := c0; i < c1; i++ {
				o := (i - c0) * vocab
				ab := logSoftmax(lpB, lb[o:o+vocab])
				aa := logSoftmax(lpA, la[o:o+vocab])
				next := win[i+1]
				nllB -= lpB[next]
				nllA -= lpA[next]
				for v := range lpB {
					if lpB[v] > -700 { // exp underflows to 0 below; skip 0*log0 terms
						kl += math.Exp(lpB[v]) * (lpB[v] - lpA[v])
					}
				}
				if ab == aa {
					agree++
				}
				n++
			}
			progress(n, total)
		}
	}
	fn := float64(n)
	return evalResult{
		pplBefore: math.Exp(nllB / fn), pplAfter: math.Exp(nllA / fn),
		meanKL: max(kl/fn, 0), top1: float64(agree) / fn, tokens: n,
	}, nil
}

// logSoftmax writes log softmax(x) into dst (float64) and returns argmax x.
func logSoftmax(dst []float64, x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	m := float64(x[best])
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	ls := math.Log(s) + m
	for i, v := range x {
		dst[i] = float64(v) - ls
	}
	return best
}
