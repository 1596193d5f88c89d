package sampling

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestLogprobs(t *testing.T) {
	ninf := float32(math.Inf(-1))
	tests := []struct {
		name   string
		x      []float32
		k      int
		want   []int     // top IDs
		logZ   float64   // want
		wantLP []float64 // log probabilities of want
	}{
		{"uniform", []float32{0, 0, 0, 0}, 2, []int{0, 1}, math.Log(4), []float64{-math.Log(4), -math.Log(4)}},
		{"ordered", []float32{1, 3, 2}, 3, []int{1, 2, 0}, math.Log(math.E + math.Exp(3) + math.Exp(2)), nil},
		{"masked and nan", []float32{ninf, nan, 5, ninf}, 4, []int{2}, 5, []float64{0}},
		{"no finite", []float32{ninf, nan}, 3, nil, math.Inf(-1), nil},
		{"k zero", []float32{1, 2}, 0, nil, math.Log(math.E + math.Exp(2)), nil},
		{"+inf", []float32{1, inf, inf}, 5, []int{1, 2}, math.Inf(1), []float64{-math.Log(2), -math.Log(2)}},
	}
	for _, tt := range tests {
		logZ, top := Logprobs(tt.x, tt.k, nil)
		if math.Abs(logZ-tt.logZ) > 1e-9 && !(math.IsInf(logZ, 0) && logZ == tt.logZ) {
			t.Errorf("%s: got log Z %v, want %v", tt.name, logZ, tt.logZ)
		}
		var ids []int
		for i, e := range top {
			ids = append(ids, e.ID)
			if got := Logprob(tt.x, e.ID, logZ); math.Abs(got-e.Logprob) > 1e-9 {
				t.Errorf("%s: Logprob(%d) = %v, top says %v", tt.name, e.ID, got, e.Logprob)
			}
			if tt.wantLP != nil && math.Abs(e.Logprob-tt.wantLP[i]) > 1e-9 {
				t.Errorf("%s: top %d: got logprob %v, want %v", tt.name, i, e.Logprob, tt.wantLP[i])
			}
		}
		if !slices.Equal(ids, tt.want) {
			t.Errorf("%s: got top %v, want %v", tt.name, ids, tt.want)
		}
	}
}

// TestLogprobsTopMatchesSort checks the top-k against a full sort on random
// vocabularies with ties.
func TestLogprobsTopMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n := 1 + rng.IntN(300)
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.IntN(20)) / 4 // many ties
		}
		k := rng.IntN(MaxTopLogprobs + 1)
		_, top := Logprobs(x, k, nil)
		ids := make([]int, n)
		for i := range ids {
			ids[i] = i
		}
		slices.SortStableFunc(ids, func(a, b int) int {
			switch {
			case x[a] > x[b]:
				return -1
			case x[a] < x[b]:
				return 1
			}
			return 0
		})
		want := ids[:min(k, n)]
		var got []int
		for _, e := range top {
			got = append(got, e.ID)
		}
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("n=%d k=%d: got %v, want %v", n, k, got, want)
		}
	}
}

func TestPresenceFrequencyPenalties(t *testing.T) {
	s := mustNew(t, WithPenalties(0.5, 0.25))
	x := []float32{3, 3, 3}
	s.Accept(0)
	s.Accept(0)
	s.Accept(1)
	s.Penalize(x, nil)
	want := []float32{3 - 0.5 - 2*0.25, 3 - 0.5 - 0.25, 3}
	if !slices.Equal(x, want) {
		t.Errorf("got %v, want %v", x, want)
	}
	// Greedy: the untouched token wins; TrySample leaves its input alone.
	in := []float32{3, 3, 3}
	if got := s.Sample(in, nil); got != 2 || !slices.Equal(in, []float32{3, 3, 3}) {
		t.Errorf("got %d (logits %v), want 2 and the logits unchanged", got, in)
	}
	// Without penalties Accept records nothing.
	p := mustNew(t)
	p.Accept(1)
	if len(p.counts) != 0 {
		t.Errorf("counts without penalties: %v", p.counts)
	}
}

func TestPenaltyRange(t *testing.T) {
	for _, v := range []float64{-2.01, 2.5, math.NaN()} {
		if _, err := New(WithPenalties(v, 0)); err == nil {
			t.Errorf("presence %v: no error", v)
		}
		if _, err := New(WithPenalties(0, v)); err == nil {
			t.Errorf("frequency %v: no error", v)
		}
	}
}
