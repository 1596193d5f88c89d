package model

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

func newTestModel(t testing.TB, w *Weights, opts ...Option) *Model {
	t.Helper()
	m, err := New(w, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestForwardMatchesReference(t *testing.T) {
	for _, tied := range []bool{true, false} {
		c := tinyConfig()
		c.TieWordEmbeddings = tied
		w := randomWeights(t, c, 7)
		m := newTestModel(t, w, WithHeadInt8(false))
		ids := randomTokens(rand.New(rand.NewPCG(3, 3)), 24, c.VocabSize)
		st := []Step{{Seq: m.NewSequence(), Tokens: ids, AllLogits: true}}
		if err := m.Forward(context.Background(), st); err != nil {
			t.Fatal(err)
		}
		ref := referenceLogits(t, w, ids)
		var sum, worst float64
		for i := range ids {
			got := st[0].Logits[i*c.VocabSize : (i+1)*c.VocabSize]
			for r, v := range ref[i] {
				d := math.Abs(float64(got[r]) - v)
				sum += d
				worst = max(worst, d)
			}
		}
		mean := sum / float64(len(ids)*c.VocabSize)
		// int8 rounding flips from float order make single logits differ a little.
		if mean > 2e-3 || worst > 0.1 {
			t.Errorf("tied=%v: logits differ from reference: mean %.2g, max %.2g", tied, mean, worst)
		}
	}
}

func TestPrefillEqualsDecode(t *testing.T) {
	c := tinyConfig()
	w := randomWeights(t, c, 11)
	m := newTestModel(t, w)
	ids := randomTokens(rand.New(rand.NewPCG(5, 5)), 30, c.VocabSize)
	pre := []Step{{Seq: m.NewSequence(), Tokens: ids, AllLogits: true}}
	if err := m.Forward(context.Background(), pre); err != nil {
		t.Fatal(err)
	}
	seq := m.NewSequence()
	for i, id := range ids {
		st := []Step{{Seq: seq, Tokens: []int{id}}}
		if err := m.Forward(context.Background(), st); err != nil {
			t.Fatal(err)
		}
		want := pre[0].Logits[i*c.VocabSize : (i+1)*c.VocabSize]
		if d := maxAbsDiff(st[0].Logits, want); d > 1e-5 {
			t.Fatalf("position %d: decode logits differ from prefill by %g", i, d)
		}
	}
	if got := seq.Len(); got != len(ids) {
		t.Errorf("got Len %d, want %d", got, len(ids))
	}
}

func TestBatchedEqualsSequential(t *testing.T) {
	c := tinyConfig()
	c.TieWordEmbeddings = false
	w := randomWeights(t, c, 13)
	m := newTestModel(t, w)
	r := rand.New(rand.NewPCG(9, 9))
	prompts := [][]int{randomTokens(r, 7, c.VocabSize), randomTokens(r, 1, c.VocabSize), randomTokens(r, 12, c.VocabSize)}
	next := [][]int{randomTokens(r, 1, c.VocabSize), randomTokens(r, 5, c.VocabSize), randomTokens(r, 1, c.VocabSize)}
	ctx := context.Background()

	// One at a time.
	var want [][]float32
	for i := range prompts {
		s := m.NewSequence()
		if err := m.Forward(ctx, []Step{{Seq: s, Tokens: prompts[i]}}); err != nil {
			t.Fatal(err)
		}
		st := []Step{{Seq: s, Tokens: next[i], AllLogits: i == 1}}
		if err := m.Forward(ctx, st); err != nil {
			t.Fatal(err)
		}
		want = append(want, st[0].Logits)
	}
	// Batched: prefill all, then a mixed step (decode, prefill, decode).
	seqs := []*Sequence{m.NewSequence(), m.NewSequence(), m.NewSequence()}
	var steps []Step
	for i := range prompts {
		steps = append(steps, Step{Seq: seqs[i], Tokens: prompts[i]})
	}
	if err := m.Forward(ctx, steps); err != nil {
		t.Fatal(err)
	}
	steps = steps[:0]
	for i := range next {
		steps = append(steps, Step{Seq: seqs[i], Tokens: next[i], AllLogits: i == 1})
	}
	if err := m.Forward(ctx, steps); err != nil {
		t.Fatal(err)
	}
	for i := range steps {
		if len(steps[i].Logits) != len(want[i]) {
			t.Fatalf("seq %d: got %d logits, want %d", i, len(steps[i].Logits), len(want[i]))
		}
		if d := maxAbsDiff(steps[i].Logits, want[i]); d > 1e-5 {
			t.Errorf("seq %d: batched logits differ from sequential by %g", i, d)
		}
		if got, want := seqs[i].Len(), len(prompts[i])+len(next[i]); got != want {
			t.Errorf("seq %d: got Len %d, want %d", i, got, want)
		}
	}
}

func TestKVFloat16Close(t *testing.T) {
	c := tinyConfig()
	w := randomWeights(t, c, 17)
	ids := randomTokens(rand.New(rand.NewPCG(1, 2)), 32, c.VocabSize)
	var logits [2][]float32
	for i, kv := range []KVType{KVFloat32, KVFloat16} {
		m := newTestModel(t, w, WithKVType(kv))
		st := []Step{{Seq: m.NewSequence(), Tokens: ids, AllLogits: true}}
		if err := m.Forward(context.Background(), st); err != nil {
			t.Fatal(err)
		}
		logits[i] = st[0].Logits
	}
	var sum, norm float64
	for i := range logits[0] {
		sum += math.Abs(float64(logits[0][i] - logits[1][i]))
		norm += math.Abs(float64(logits[0][i]))
	}
	if rel := sum / norm; rel > 0.01 {
		t.Errorf("fp16 KV cache: relative logit difference %g, want <= 0.01", rel)
	}
	t.Logf("fp16 KV cache: relative logit difference %.3g", sum/norm)
}

// TestGroupedAttention checks attention in KV-head groups of four query
// heads (fp16 cache read in place) against the per-head float32 path,
// over a prefill and decode steps, sliding layers included.
func TestGroupedAttention(t *testing.T) {
	for _, window := range []int{0, 5} {
		c := tinyConfig()
		c.NumHeads, c.NumKVHeads, c.HeadDim = 8, 2, 16
		c.SlidingWindow = window
		w := randomWeights(t, c, 23)
		ids := randomTokens(rand.New(rand.NewPCG(3, 4)), 24, c.VocabSize)
		var logits [2][]float32
		for i, kv := range []KVType{KVFloat32, KVFloat16} {
			m := newTestModel(t, w, WithKVType(kv))
			s := m.NewSequence()
			st := []Step{{Seq: s, Tokens: ids[:16]}}
			if err := m.Forward(context.Background(), st); err != nil {
				t.Fatal(err)
			}
			for _, id := range ids[16:] { // decode steps
				st[0].Tokens = []int{id}
				if err := m.Forward(context.Background(), st); err != nil {
					t.Fatal(err)
				}
				logits[i] = append(logits[i], st[0].Logits...)
			}
			if want := kv == KVFloat16 && m.fl.HalfRows4(c.HeadDim); m.scratch.group4 != want {
				t.Errorf("window %d, %s cache: grouped attention %t, want %t", window, kv, m.scratch.group4, want)
			}
		}
		var sum, norm float64
		for i := range logits[0] {
			sum += math.Abs(float64(logits[0][i] - logits[1][i]))
			norm += math.Abs(float64(logits[0][i]))
		}
		if rel := sum / norm; rel > 0.01 {
			t.Errorf("window %d: grouped fp16 attention against per-head float32: relative logit difference %g, want <= 0.01", window, rel)
		}
	}
}

func TestHeadInt8Close(t *testing.T) {
	c := tinyConfig()
	w := randomWeights(t, c, 19)
	ids := randomTokens(rand.New(rand.NewPCG(4, 2)), 16, c.VocabSize)
	forward := func(opts ...Option) []float32 {
		m := newTestModel(t, w, opts...)
		st := []Step{{Seq: m.NewSequence(), Tokens: ids, AllLogits: true}}
		if err := m.Forward(context.Background(), st); err != nil {
			t.Fatal(err)
		}
		return st[0].Logits
	}
	exact := forward(WithHeadInt8(false))
	// Random weights: uniform steps of each format relative to the row maximum.
	for _, c := range []struct {
		f   kernels.HeadFormat
		max float64
	}{{kernels.HeadInt8, 0.02}, {kernels.HeadInt6, 0.08}, {kernels.HeadInt4, 0.3}} {
		got := forward(WithHeadFormat(c.f))
		var sum, norm float64
		for i := range exact {
			sum += math.Abs(float64(exact[i] - got[i]))
			norm += math.Abs(float64(exact[i]))
		}
		if rel := sum / norm; rel > c.max {
			t.Errorf("%s head: relative logit difference %g, want <= %g", c.f, rel, c.max)
		}
	}
}

func TestForwardErrors(t *testing.T) {
	c := tinyConfig()
	w := randomWeights(t, c, 23)
	m := newTestModel(t, w)
	other := newTestModel(t, w)
	full := m.NewSequence()
	if err := m.Forward(context.Background(), []Step{{Seq: full, Tokens: make([]int, c.MaxPositions)}}); err != nil {
		t.Fatal(err)
	}
	s := m.NewSequence()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		steps []Step
		want  error
	}{
		{"no steps", context.Background(), nil, ErrInput},
		{"nil sequence", context.Background(), []Step{{Tokens: []int{1}}}, ErrInput},
		{"other model", context.Background(), []Step{{Seq: other.NewSequence(), Tokens: []int{1}}}, ErrInput},
		{"empty tokens", context.Background(), []Step{{Seq: s}}, ErrInput},
		{"negative id", context.Background(), []Step{{Seq: s, Tokens: []int{-1}}}, ErrInput},
		{"id too large", context.Background(), []Step{{Seq: s, Tokens: []int{c.VocabSize}}}, ErrInput},
		{"duplicate sequence", context.Background(), []Step{{Seq: s, Tokens: []int{1}}, {Seq: s, Tokens: []int{2}}}, ErrInput},
		{"past context", context.Background(), []Step{{Seq: full, Tokens: []int{1}}}, ErrInput},
		{"prompt too long", context.Background(), []Step{{Seq: s, Tokens: make([]int, c.MaxPositions+1)}}, ErrInput},
		{"cancelled", cancelled, []Step{{Seq: s, Tokens: []int{1}}}, context.Canceled},
	}
	for _, tt := range tests {
		err := m.Forward(tt.ctx, tt.steps)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: got error %v, want %v", tt.name, err, tt.want)
		}
	}
	if s.Len() != 0 || full.Len() != c.MaxPositions {
		t.Errorf("failed calls changed sequences: got lens %d, %d, want 0, %d", s.Len(), full.Len(), c.MaxPositions)
	}
}

func TestSequenceResetTruncate(t *testing.T) {
	c := tinyConfig()
	w := randomWeights(t, c, 29)
	m := newTestModel(t, w)
	ctx := context.Background()
	ids := randomTokens(rand.New(rand.NewPCG(8, 8)), 10, c.VocabSize)
	s := m.NewSequence()
	st := []Step{{Seq: s, Tokens: ids}}
	if err := m.Forward(ctx, st); err != nil {
		t.Fatal(err)
	}
	want := append([]float32(nil), st[0].Logits...)
	if err := s.Truncate(6); err != nil {
		t.Fatal(err)
	}
	st = []Step{{Seq: s, Tokens: ids[6:]}}
	if err := m.Forward(ctx, st); err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(st[0].Logits, want); d > 1e-5 {
		t.Errorf("after Truncate: logits differ by %g", d)
	}
	s.Reset()
	st = []Step{{Seq: s, Tokens: ids}}
	if err := m.Forward(ctx, st); err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(st[0].Logits, want); d > 1e-5 {
		t.Errorf("after Reset: logits differ by %g", d)
	}
	if err := s.Truncate(11); err == nil {
		t.Error("Truncate past Len: got nil error")
	}
}

func TestDecodeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	c := tinyConfig()
	w := randomWeights(t, c, 37)
	eng, err := kernels.New(kernels.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	m := newTestModel(t, w, WithEngine(eng))
	s := m.NewSequence()
	ctx := context.Background()
	st := []Step{{Seq: s, Tokens: []int{1, 2, 3}}}
	if err := m.Forward(ctx, st); err != nil {
		t.Fatal(err)
	}
	st[0].Tokens = []int{4}
	allocs := testing.AllocsPerRun(20, func() {
		s.Truncate(3)
		if err := m.Forward(ctx, st); err != nil {
			t.Fatal(err)
		}
	})
	// On one thread neither the model nor the kernels allocate per step.
	if allocs > 0 {
		t.Errorf("decode step: got %v allocations, want 0", allocs)
	}
}

// cancelAfter is a context whose Err turns to Canceled after n calls, to stop
// Forward between layers.
type cancelAfter struct {
	context.Context
	n int
}

func (c *cancelAfter) Err() error {
	if c.n--; c.n < 0 {
		return context.Canceled
	}
	return nil
}

func TestForwardCancelBetweenLayers(t *testing.T) {
	c := tinyConfig()
	w := randomWeights(t, c, 41)
	m := newTestModel(t, w)
	ids := randomTokens(rand.New(rand.NewPCG(6, 6)), 9, c.VocabSize)
	want := []Step{{Seq: m.NewSequence(), Tokens: ids}}
	if err := m.Forward(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	s := m.NewSequence()
	if err := m.Forward(context.Background(), []Step{{Seq: s, Tokens: ids[:4]}}); err != nil {
		t.Fatal(err)
	}
	// Fails before layer 1 (after the entry check and layer 0's check).
	err := m.Forward(&cancelAfter{Context: context.Background(), n: 2}, []Step{{Seq: s, Tokens: ids[4:]}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got error %v, want context.Canceled", err)
	}
	if s.Len() != 4 {
		t.Fatalf("cancelled Forward changed Len to %d, want 4", s.Len())
	}
	st := []Step{{Seq: s, Tokens: ids[4:]}}
	if err := m.Forward(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(st[0].Logits, want[0].Logits); d > 1e-5 {
		t.Errorf("after a cancelled call: logits differ by %g", d)
	}
}

func TestPerplexityErrors(t *testing.T) {
	c := tinyConfig()
	m := newTestModel(t, randomWeights(t, c, 43))
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		tokens []int
		window int
	}{
		{"one token", []int{1}, 0},
		{"window 1", []int{1, 2, 3}, 1},
		{"negative window", []int{1, 2, 3}, -5},
		{"window past context", []int{1, 2, 3}, c.MaxPositions + 1},
		{"target out of range", []int{1, 2, c.VocabSize}, 0},
	} {
		if _, err := m.Perplexity(ctx, tc.tokens, tc.window); !errors.Is(err, ErrInput) {
			t.Errorf("%s: got error %v, want ErrInput", tc.name, err)
		}
	}
	// Windows past the context split the text; a final single token is not scored.
	ids := randomTokens(rand.New(rand.NewPCG(2, 9)), 2*c.MaxPositions+1, c.VocabSize)
	res, err := m.Perplexity(ctx, ids, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * (c.MaxPositions - 1); res.Tokens != want {
		t.Errorf("got %d scored tokens, want %d", res.Tokens, want)
	}
	var nilSeq *Sequence
	if nilSeq.Len() != 0 || nilSeq.Truncate(0) == nil {
		t.Error("nil Sequence: want Len 0 and a Truncate error")
	}
	var nilModel *Model
	if nilModel.Forward(ctx, nil) == nil {
		t.Error("nil Model: Forward returned nil error")
	}
}

// TestThreadsSameLogits runs a prefill large enough for the parallel paths
// (float ops split by token, attention by head) and checks that one and three
// threads give the same logits bit for bit.
func TestThreadsSameLogits(t *testing.T) {
	c := tinyConfig()
	c.HiddenSize, c.IntermediateSize, c.MaxPositions = 256, 512, 160
	w := randomWeights(t, c, 47)
	ids := randomTokens(rand.New(rand.NewPCG(3, 1)), 150, c.VocabSize)
	var logits [2][]float32
	for i, threads := range []int{1, 3} {
		eng, err := kernels.New(kernels.WithThreads(threads))
		if err != nil {
			t.Fatal(err)
		}
		m := newTestModel(t, w, WithEngine(eng), WithKVType(KVFloat16))
		st := []Step{{Seq: m.NewSequence(), Tokens: ids, AllLogits: true}}
		if err := m.Forward(context.Background(), st); err != nil {
			t.Fatal(err)
		}
		logits[i] = st[0].Logits
		eng.Close()
	}
	if d := maxAbsDiff(logits[0], logits[1]); d != 0 {
		t.Errorf("1 vs 3 threads: logits differ by %g", d)
	}
}
