package sampling

import (
	"errors"
	"math"
	"slices"
	"testing"
)

var (
	inf = float32(math.Inf(1))
	nan = float32(math.NaN())
)

func mustNew(t *testing.T, opts ...Option) *Sampler {
	t.Helper()
	s, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGreedy(t *testing.T) {
	tests := []struct {
		name    string
		logits  []float32
		history []int
		opts    []Option
		want    int
	}{
		{"max", []float32{0.1, 2, -1}, nil, nil, 1},
		{"tie takes first", []float32{3, 1, 3}, nil, nil, 0},
		{"nan ignored", []float32{nan, 1, nan}, nil, nil, 1},
		{"+inf", []float32{1, inf, 2}, nil, nil, 1},
		{"penalty divides positive", []float32{2, 1.5}, []int{0}, []Option{WithRepetitionPenalty(2, 0)}, 1},
		{"penalty multiplies negative", []float32{-1, -1.5}, []int{0}, []Option{WithRepetitionPenalty(2, 0)}, 1},
		{"penalty once per token", []float32{4, 1.5}, []int{0, 0, 0}, []Option{WithRepetitionPenalty(2, 0)}, 0},
		{"penalty window", []float32{2, 1.5}, []int{0, 1}, []Option{WithRepetitionPenalty(2, 1)}, 0},
		{"history out of range", []float32{2, 1.5}, []int{-1, 7}, []Option{WithRepetitionPenalty(2, 0)}, 0},
	}
	for _, tt := range tests {
		s := mustNew(t, tt.opts...)
		if got := s.Sample(tt.logits, tt.history); got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestPenaltyDoesNotModifyLogits(t *testing.T) {
	logits := []float32{2, -2}
	s := mustNew(t, WithRepetitionPenalty(1.3, 0))
	s.Sample(logits, []int{0, 1})
	if !slices.Equal(logits, []float32{2, -2}) {
		t.Errorf("logits changed to %v", logits)
	}
}

func TestNoCandidates(t *testing.T) {
	ninf := float32(math.Inf(-1))
	for _, temp := range []float64{0, 0.8} {
		s := mustNew(t, WithTemperature(temp), WithTopP(0.9), WithSeed(1))
		for _, logits := range [][]float32{{ninf, ninf}, {nan, nan}, {nan, ninf}} {
			if _, err := s.TrySample(logits, nil); !errors.Is(err, ErrNoCandidates) {
				t.Errorf("temp %v TrySample(%v): got %v, want ErrNoCandidates", temp, logits, err)
			}
			if got := s.Sample(logits, nil); got != 0 {
				t.Errorf("temp %v Sample(%v) = %d, want the fallback 0", temp, logits, got)
			}
		}
		if got := s.Sample(nil, nil); got != -1 {
			t.Errorf("Sample(nil) = %d, want -1", got)
		}
	}
}

func TestNewValidates(t *testing.T) {
	bad := [][]Option{
		{WithTemperature(-1)}, {WithTemperature(math.NaN())}, {WithTemperature(math.Inf(1))},
		{WithTopK(-1)}, {WithTopP(0)}, {WithTopP(1.5)}, {WithMinP(-0.1)}, {WithMinP(2)},
		{WithRepetitionPenalty(0, 0)}, {WithRepetitionPenalty(1.1, -1)},
	}
	for i, opts := range bad {
		if _, err := New(opts...); err == nil {
			t.Errorf("case %d: New accepted bad options", i)
		}
	}
}

// TestNewReportsValuesAsGiven: a rejected value that came through the API's
// float32 fields is reported as sent (issue 15), not as its float64 widening.
func TestNewReportsValuesAsGiven(t *testing.T) {
	tests := []struct {
		opt  Option
		want string
	}{
		{WithTopP(float64(float32(1.1))), "sampling: top-p 1.1 must be in (0, 1]"},
		{WithTemperature(float64(float32(-0.7))), "sampling: temperature -0.7 must be finite and >= 0"},
		{WithMinP(float64(float32(1.3))), "sampling: min-p 1.3 must be in [0, 1]"},
		{WithPenalties(float64(float32(2.2)), 0), "sampling: presence penalty 2.2 must be in [-2, 2]"},
		{WithPenalties(0, float64(float32(-3.3))), "sampling: frequency penalty -3.3 must be in [-2, 2]"},
		{WithRepetitionPenalty(float64(float32(-0.1)), 0), "sampling: repetition penalty -0.1 must be finite and > 0"},
		{WithTopP(0.1 + 1), "sampling: top-p 1.1 must be in (0, 1]"},
		{WithTemperature(math.Inf(1)), "sampling: temperature +Inf must be finite and >= 0"},
	}
	for _, tc := range tests {
		_, err := New(tc.opt)
		if err == nil || err.Error() != tc.want {
			t.Errorf("got %v, want %s", err, tc.want)
		}
	}
}

// counts samples n draws.
func counts(t *testing.T, s *Sampler, logits []float32, n int) []int {
	c := make([]int, len(logits))
	for i := 0; i < n; i++ {
		id := s.Sample(logits, nil)
		if id < 0 || id >= len(logits) {
			t.Fatalf("sample %d out of range", id)
		}
		c[id]++
	}
	return c
}

func TestFilters(t *testing.T) {
	// Probabilities at temperature 1: 0.5, 0.25, 0.125, 0.125.
	logits := []float32{float32(math.Log(0.5)), float32(math.Log(0.25)), float32(math.Log(0.125)), float32(math.Log(0.125))}
	tests := []struct {
		name    string
		opts    []Option
		allowed []bool
	}{
		{"temperature only", nil, []bool{true, true, true, true}},
		{"top-k 1", []Option{WithTopK(1)}, []bool{true, false, false, false}},
		{"top-k 3 keeps ties", []Option{WithTopK(3)}, []bool{true, true, true, true}},
		{"top-k 2", []Option{WithTopK(2)}, []bool{true, true, false, false}},
		{"top-p 0.5", []Option{WithTopP(0.5)}, []bool{true, false, false, false}},
		{"top-p 0.6", []Option{WithTopP(0.6)}, []bool{true, true, false, false}},
		{"top-p 0.75", []Option{WithTopP(0.75)}, []bool{true, true, false, false}},
		{"min-p 0.3", []Option{WithMinP(0.3)}, []bool{true, true, false, false}},
		{"min-p 0.2", []Option{WithMinP(0.2)}, []bool{true, true, true, true}},
	}
	for _, tt := range tests {
		s := mustNew(t, append([]Option{WithTemperature(1), WithSeed(42)}, tt.opts...)...)
		c := counts(t, s, logits, 4000)
		for i, ok := range tt.allowed {
			if ok && c[i] == 0 {
				t.Errorf("%s: token %d never drawn (%v)", tt.name, i, c)
			}
			if !ok && c[i] != 0 {
				t.Errorf("%s: token %d drawn %d times, want 0", tt.name, i, c[i])
			}
		}
	}
}

func TestDistribution(t *testing.T) {
	logits := []float32{0, float32(math.Log(3))} // p = 0.25, 0.75
	s := mustNew(t, WithTemperature(1), WithSeed(7))
	c := counts(t, s, logits, 20000)
	if got := float64(c[1]) / 20000; math.Abs(got-0.75) > 0.02 {
		t.Errorf("frequency of token 1 = %.3f, want 0.75 +- 0.02", got)
	}
	// A low temperature sharpens the distribution.
	s = mustNew(t, WithTemperature(0.25), WithSeed(7))
	c = counts(t, s, logits, 20000)
	if got, want := float64(c[1])/20000, 81.0/82.0; math.Abs(got-want) > 0.01 {
		t.Errorf("temperature 0.25: frequency %.3f, want %.3f", got, want)
	}
}

func TestSeedReproducible(t *testing.T) {
	logits := make([]float32, 1000)
	for i := range logits {
		logits[i] = float32(math.Sin(float64(i)))
	}
	run := func(seed uint64) []int {
		s := mustNew(t, WithTemperature(0.9), WithTopK(50), WithTopP(0.95), WithSeed(seed), WithRepetitionPenalty(1.1, 64))
		var out []int
		for i := 0; i < 200; i++ {
			out = append(out, s.Sample(logits, out))
		}
		return out
	}
	a, b, c := run(1), run(1), run(2)
	if !slices.Equal(a, b) {
		t.Error("same seed gave different tokens")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds gave the same 200 tokens")
	}
}

func TestInfAndNaNSampling(t *testing.T) {
	s := mustNew(t, WithTemperature(1), WithSeed(3))
	c := counts(t, s, []float32{1, inf, nan, inf}, 2000)
	if c[0] != 0 || c[2] != 0 || c[1] == 0 || c[3] == 0 {
		t.Errorf("counts %v: want only the +Inf tokens 1 and 3", c)
	}
	c = counts(t, s, []float32{nan, 1, nan}, 100)
	if c[1] != 100 {
		t.Errorf("counts %v: want only token 1", c)
	}
}

func BenchmarkSample128k(b *testing.B) {
	logits := make([]float32, 128256)
	for i := range logits {
		logits[i] = float32(math.Sin(float64(i)*0.37)) * 8
	}
	for _, bc := range []struct {
		name string
		opts []Option
	}{
		{"greedy", nil},
		{"temp", []Option{WithTemperature(0.8)}},
		{"topk40-topp0.95", []Option{WithTemperature(0.8), WithTopK(40), WithTopP(0.95)}},
		{"topp0.9", []Option{WithTemperature(0.8), WithTopP(0.9)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, _ := New(append(bc.opts, WithSeed(1), WithRepetitionPenalty(1.1, 64))...)
			hist := []int{1, 2, 3, 4, 5}
			for b.Loop() {
				s.Sample(logits, hist)
			}
		})
	}
}

func TestTinyTemperature(t *testing.T) {
	for _, temp := range []float64{1e-320, 1e-9} {
		s := mustNew(t, WithTemperature(temp), WithSeed(1))
		if got := s.Sample([]float32{0.5, 2, 1}, nil); got != 1 {
			t.Errorf("temperature %g: got %d, want the argmax 1", temp, got)
		}
	}
}
