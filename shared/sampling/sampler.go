// Package sampling picks the next token from a model's logits (greedy,
// temperature, top-k, top-p, min-p, repetition, presence and frequency
// penalties, seeded), reports log probabilities, and detects stop strings in
// streamed text.
//
// The order and semantics follow Hugging Face generate: repetition penalty
// (and OpenAI's presence and frequency penalties over the generated tokens),
// then temperature, top-k, top-p and min-p, then a draw from the softmax.
package sampling

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
)

// ErrNoCandidates means that no logit was a number above -Inf.
var ErrNoCandidates = errors.New("sampling: no finite logits")

// Sampler draws tokens. It keeps scratch buffers and a private PCG source, so
// it is not safe for concurrent use: use one Sampler per sequence.
type Sampler struct {
	temperature float64
	topK        int
	topP        float64
	minP        float64
	penalty     float64
	window      int
	presence    float64
	frequency   float64
	seed        uint64
	seeded      bool

	rng   *rand.Rand
	buf   []float32
	cands []cand
	exps  []float64
	seen  map[int]struct{}
	// counts are the generated tokens Accept recorded, for the presence
	// and frequency penalties.
	counts map[int]int
}

type cand struct {
	id    int
	logit float64
	p     float64
}

// Option configures a Sampler.
type Option func(*Sampler)

// WithTemperature sets the softmax temperature; 0 (the default) is greedy.
func WithTemperature(t float64) Option { return func(s *Sampler) { s.temperature = t } }

// WithTopK keeps the k most likely tokens (ties with the k-th included);
// 0 disables.
func WithTopK(k int) Option { return func(s *Sampler) { s.topK = k } }

// WithTopP keeps the smallest set of most likely tokens whose probability
// reaches p; 1 disables.
func WithTopP(p float64) Option { return func(s *Sampler) { s.topP = p } }

// WithMinP drops tokens less likely than p times the most likely one; 0
// disables.
func WithMinP(p float64) Option { return func(s *Sampler) { s.minP = p } }

// WithRepetitionPenalty penalises tokens seen in the last window tokens of
// the history (window 0: all of it): positive logits are divided by penalty,
// negative ones multiplied. 1 disables.
func WithRepetitionPenalty(penalty float64, window int) Option {
	return func(s *Sampler) { s.penalty, s.window = penalty, window }
}

// WithPenalties sets OpenAI's presence and frequency penalties (each in
// [-2, 2]; 0 disables): a token generated c > 0 times so far (see Accept)
// has its logit lowered by presence + c*frequency.
func WithPenalties(presence, frequency float64) Option {
	return func(s *Sampler) { s.presence, s.frequency = presence, frequency }
}

// WithSeed makes the draws reproducible: the same seed, options and inputs
// give the same tokens. Without it the seed is random.
func WithSeed(seed uint64) Option { return func(s *Sampler) { s.seed, s.seeded = seed, true } }

// asGiven formats a rejected value as its sender wrote it. The APIs carry
// these settings as float32, so a value that a float32 holds exactly is
// printed as that float32 (top-p 1.1, not 1.100000023841858).
func asGiven(v float64) string {
	if float64(float32(v)) == v {
		return strconv.FormatFloat(v, 'g', -1, 32)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// New returns a Sampler; it checks that the options are in range.
func New(opts ...Option) (*Sampler, error) {
	s := &Sampler{topP: 1, penalty: 1}
	for _, o := range opts {
		o(s)
	}
	switch {
	case !(s.temperature >= 0) || math.IsInf(s.temperature, 1):
		return nil, fmt.Errorf("sampling: temperature %s must be finite and >= 0", asGiven(s.temperature))
	case s.topK < 0:
		return nil, fmt.Errorf("sampling: top-k %d must be >= 0", s.topK)
	case !(s.topP > 0 && s.topP <= 1):
		return nil, fmt.Errorf("sampling: top-p %s must be in (0, 1]", asGiven(s.topP))
	case !(s.minP >= 0 && s.minP <= 1):
		return nil, fmt.Errorf("sampling: min-p %s must be in [0, 1]", asGiven(s.minP))
	case !(s.penalty > 0) || math.IsInf(s.penalty, 1):
		return nil, fmt.Errorf("sampling: repetition penalty %s must be finite and > 0", asGiven(s.penalty))
	case s.window < 0:
		return nil, fmt.Errorf("sampling: repetition window %d must be >= 0", s.window)
	case !(s.presence >= -2 && s.presence <= 2):
		return nil, fmt.Errorf("sampling: presence penalty %s must be in [-2, 2]", asGiven(s.presence))
	case !(s.frequency >= -2 && s.frequency <= 2):
		return nil, fmt.Errorf("sampling: frequency penalty %s must be in [-2, 2]", asGiven(s.frequency))
	}
	if !s.seeded {
		var b [8]byte
		_, _ = crand.Read(b[:])
		s.seed = binary.LittleEndian.Uint64(b[:])
	}
	s.rng = rand.New(rand.NewPCG(s.seed, s.seed^0x9e3779b97f4a7c15))
	return s, nil
}

// Greedy reports whether the sampler always takes the most likely token.
func (s *Sampler) Greedy() bool { return s.temperature == 0 }

// Sample returns the next token. NaN logits count as -Inf; when no logit is
// usable it returns 0 (and -1 for empty logits) rather than panicking: use
// TrySample to get the error instead.
func (s *Sampler) Sample(logits []float32, history []int) int {
	id, err := s.TrySample(logits, history)
	if err != nil {
		if len(logits) == 0 {
			return -1
		}
		return 0
	}
	return id
}

// TrySample is Sample with an error (ErrNoCandidates) when no logit is a
// number above -Inf. It does not modify logits.
func (s *Sampler) TrySample(logits []float32, history []int) (int, error) {
	x := logits
	if s.penalizes(history) {
		s.buf = append(s.buf[:0], logits...)
		x = s.buf
		s.Penalize(x, history)
	}
	return s.Pick(x)
}

// penalizes reports whether Penalize would change anything.
func (s *Sampler) penalizes(history []int) bool {
	return (s.penalty != 1 && len(history) > 0) || ((s.presence != 0 || s.frequency != 0) && len(s.counts) > 0)
}

// Accept records a generated token for the presence and frequency
// penalties. Callers that use them call it once per generated token.
func (s *Sampler) Accept(id int) {
	if s.presence == 0 && s.frequency == 0 {
		return
	}
	if s.counts == nil {
		s.counts = map[int]int{}
	}
	s.counts[id]++
}

// Penalize applies the repetition penalty (over history) and the presence
// and frequency penalties (over the accepted tokens) to x in place: the
// first half of TrySample, for callers that read the penalised logits
// (log probabilities) before Pick.
func (s *Sampler) Penalize(x []float32, history []int) {
	if s.penalty != 1 && len(history) > 0 {
		s.applyPenalty(x, history)
	}
	if s.presence != 0 || s.frequency != 0 {
		for id, c := range s.counts {
			if id >= 0 && id < len(x) {
				x[id] -= float32(s.presence + float64(c)*s.frequency)
			}
		}
	}
}

// Pick draws a token from x as it is (no penalties): greedy or from the
// filtered softmax. It does not modify x.
func (s *Sampler) Pick(x []float32) (int, error) {
	if s.temperature == 0 {
		return argmax(x)
	}
	return s.draw(x)
}

func (s *Sampler) applyPenalty(x []float32, history []int) {
	if s.window > 0 && len(history) > s.window {
		history = history[len(history)-s.window:]
	}
	if s.seen == nil {
		s.seen = make(map[int]struct{}, len(history))
	}
	clear(s.seen)
	p := float32(s.penalty)
	for _, id := range history {
		if id < 0 || id >= len(x) {
			continue
		}
		if _, dup := s.seen[id]; dup {
			continue
		}
		s.seen[id] = struct{}{}
		if x[id] < 0 {
			x[id] *= p
		} else {
			x[id] /= p
		}
	}
}

// argmax returns the first index of the largest logit, ignoring NaN.
func argmax(x []float32) (int, error) {
	best, bv := -1, float32(math.Inf(-1))
	for i, v := range x {
		if v > bv {
			best, bv = i, v
		}
	}
	if best < 0 {
		return 0, ErrNoCandidates
	}
	return best, nil
}

// negligible is how far below the maximum a scaled logit may be before its
// probability (< e^-50 relative) cannot change a float64 sum; such tokens are
// dropped before sorting, which keeps a 128k vocabulary cheap.
const negligible = 50

func (s *Sampler) draw(x []float32) (int, error) {
	maxv := math.Inf(-1)
	for _, v := range x {
		if float64(v) > maxv {
			maxv = float64(v)
		}
	}
	if math.IsInf(maxv, -1) {
		return 0, ErrNoCandidates
	}
	if s.topK == 0 && s.topP == 1 && s.minP == 0 && !math.IsInf(maxv, 1) {
		return s.drawAll(x, maxv), nil
	}
	c := s.cands[:0]
	if math.IsInf(maxv, 1) {
		// +Inf logits share all the probability equally.
		for i, v := range x {
			if math.IsInf(float64(v), 1) {
				c = append(c, cand{id: i, logit: 0})
			}
		}
	} else {
		cut := maxv - negligible*s.temperature
		for i, v := range x {
			if float64(v) >= cut {
				c = append(c, cand{id: i, logit: (float64(v) - maxv) / s.temperature})
			}
		}
	}
	s.cands = c
	if s.topK > 0 && s.topK < len(c) {
		selectTop(c, s.topK)
		// Tokens tied with the k-th are kept too (as Hugging Face does).
		kth := c[0].logit
		for _, e := range c[:s.topK] {
			kth = min(kth, e.logit)
		}
		n := s.topK
		for i := n; i < len(c); i++ {
			if c[i].logit == kth {
				c[n], c[i] = c[i], c[n]
				n++
			}
		}
		c = c[:n]
	}
	softmax(c)
	if s.topP < 1 {
		c = topP(c, s.topP)
		softmax(c)
	}
	if s.minP > 0 {
		pmax := 0.0
		for _, e := range c {
			pmax = max(pmax, e.p)
		}
		limit := s.minP * pmax
		n := 0
		for _, e := range c {
			if e.p >= limit {
				c[n] = e
				n++
			}
		}
		c = c[:n]
		softmax(c)
	}
	u := s.rng.Float64()
	acc := 0.0
	for _, e := range c {
		acc += e.p
		if u < acc {
			return e.id, nil
		}
	}
	return c[len(c)-1].id, nil
}

// drawAll samples from the softmax of all of x (no filters) without building
// candidates: one exp per token into a scratch buffer, then one scan.
func (s *Sampler) drawAll(x []float32, maxv float64) int {
	if cap(s.exps) < len(x) {
		s.exps = make([]float64, len(x))
	}
	e := s.exps[:len(x)]
	inv := 1 / s.temperature
	sum := 0.0
	for i, v := range x {
		p := 0.0
		if f := (float64(v) - maxv) * inv; f >= -negligible {
			p = math.Exp(f) // NaN compares false and stays 0
		}
		e[i] = p
		sum += p
	}
	if !(sum > 0) { // a subnormal temperature overflows inv: act greedily
		id, _ := argmax(x)
		return id
	}
	target := s.rng.Float64() * sum
	acc, last := 0.0, 0
	for i, p := range e {
		if p == 0 {
			continue
		}
		acc += p
		last = i
		if target < acc {
			return i
		}
	}
	return last
}

// better is the total order of candidates: higher logit first, then lower id.
func better(a, b cand) bool {
	return a.logit > b.logit || (a.logit == b.logit && a.id < b.id)
}

func cmpCand(a, b cand) int {
	switch {
	case better(a, b):
		return -1
	case better(b, a):
		return 1
	}
	return 0
}

// selectTop moves the k best candidates to c[:k] (in no particular order) in
// expected O(len(c)) time.
func selectTop(c []cand, k int) {
	lo, hi := 0, len(c)-1
	for lo < hi {
		// Median of three as the pivot.
		mid := lo + (hi-lo)/2
		if better(c[mid], c[lo]) {
			c[mid], c[lo] = c[lo], c[mid]
		}
		if better(c[hi], c[lo]) {
			c[hi], c[lo] = c[lo], c[hi]
		}
		if better(c[hi], c[mid]) {
			c[hi], c[mid] = c[mid], c[hi]
		}
		pivot := c[mid]
		c[mid], c[hi] = c[hi], c[mid]
		store := lo
		for i := lo; i < hi; i++ {
			if better(c[i], pivot) {
				c[i], c[store] = c[store], c[i]
				store++
			}
		}
		c[store], c[hi] = c[hi], c[store]
		switch {
		case store == k || store == k-1:
			return
		case store < k:
			lo = store + 1
		default:
			hi = store - 1
		}
	}
}

// topPChunk is how many candidates topP sorts first: peaked distributions
// reach p within it, so a 128k vocabulary is rarely fully sorted. Later
// chunks double, which bounds flat distributions at O(n log n).
const topPChunk = 64

// topP returns the shortest best-first prefix of c whose probability mass
// reaches p (at least one token).
func topP(c []cand, p float64) []cand {
	mass := 0.0
	chunk := topPChunk
	for start := 0; start < len(c); chunk *= 2 {
		rest := c[start:]
		n := min(chunk, len(rest))
		if n < len(rest) {
			selectTop(rest, n)
		}
		slices.SortFunc(rest[:n], cmpCand)
		for i := start; i < start+n; i++ {
			mass += c[i].p
			if mass >= p {
				return c[:i+1]
			}
		}
		start += n
	}
	return c
}

// softmax sets p from logit (which are <= 0 relative to the best one).
func softmax(c []cand) {
	sum := 0.0
	for i := range c {
		c[i].p = math.Exp(c[i].logit)
		sum += c[i].p
	}
	for i := range c {
		c[i].p /= sum
	}
}
