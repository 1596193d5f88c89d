package inference

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/sampling"
)

var testPrompts = []string{
	"Light is",
	"The rays of the Sun",
	"Colours",
	"reflected and refracted by the Prism, which",
	"a",
	"OPTICKS",
}

func TestSchedulerGreedyMatchesDirect(t *testing.T) {
	m := loadTiny(t, tinyName)
	tests := []struct {
		name string
		opts []SchedulerOption
	}{
		{"defaults", nil},
		{"chunked prefill", []SchedulerOption{WithPrefillChunk(3), WithMaxBatchTokens(4), WithMaxBatch(2)}},
		{"one at a time", []SchedulerOption{WithMaxBatch(1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewScheduler(m, m.Tokenizer(), tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, p := range testPrompts {
				prompt := promptOf(m, p)
				want := directGreedy(t, m, prompt, 12)
				st, err := s.Submit(context.Background(), Request{Prompt: prompt, MaxTokens: 12})
				if err != nil {
					t.Fatal(err)
				}
				got, text, final := collect(t, st)
				if !slices.Equal(got, want) {
					t.Errorf("%q: got tokens %v, want %v", p, got, want)
				}
				if wantText := m.Tokenizer().DecodeSkipSpecial(want); text != wantText {
					t.Errorf("%q: got text %q, want %q", p, text, wantText)
				}
				if final.Usage.PromptTokens != len(prompt) || final.Usage.CompletionTokens != len(want) {
					t.Errorf("%q: got usage %+v, want %d prompt and %d completion tokens", p, final.Usage, len(prompt), len(want))
				}
				wantReason := FinishLength
				if len(want) < 12 {
					wantReason = FinishEOS
				}
				if final.Finish != wantReason {
					t.Errorf("%q: got finish %v, want %v", p, final.Finish, wantReason)
				}
			}
		})
	}
}

// TestSchedulerTokenGaps checks Event.TokenGap on batched streams: zero on
// the first token and on events without one, positive on every later
// token, and over a request the gaps add up to its decode time (first
// token to end) less the moment between the last token and the end.
func TestSchedulerTokenGaps(t *testing.T) {
	m := loadTiny(t, tinyName)
	s, err := NewScheduler(m, m.Tokenizer(), WithMaxBatch(4))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var streams []*Stream
	for _, p := range testPrompts[:4] {
		st, err := s.Submit(context.Background(), Request{Prompt: promptOf(m, p), MaxTokens: 12})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, st := range streams {
		var sum time.Duration
		tokens := 0
		for {
			ev, err := st.Recv(ctx)
			if err != nil {
				t.Fatalf("%q: recv: %v", testPrompts[i], err)
			}
			switch {
			case len(ev.TokenIDs) == 0 && ev.TokenGap != 0:
				t.Errorf("%q: got TokenGap %v on an event without tokens, want 0", testPrompts[i], ev.TokenGap)
			case len(ev.TokenIDs) > 0 && tokens == 0 && ev.TokenGap != 0:
				t.Errorf("%q: got TokenGap %v on the first token, want 0", testPrompts[i], ev.TokenGap)
			case len(ev.TokenIDs) > 0 && tokens > 0 && ev.TokenGap <= 0:
				t.Errorf("%q: token %d: got TokenGap %v, want > 0", testPrompts[i], tokens+1, ev.TokenGap)
			}
			tokens += len(ev.TokenIDs)
			sum += ev.TokenGap
			if ev.Final {
				if g := ev.Timings.Generation; sum > g || g-sum > 100*time.Millisecond {
					t.Errorf("%q: got gaps summing to %v, want the decode time %v less at most 100ms", testPrompts[i], sum, g)
				}
				break
			}
		}
	}
}

// TestSchedulerBatches lines up many requests behind a held Forward call, so
// that the following steps must batch them, and checks each stream still gets
// exactly its own greedy continuation.
func TestSchedulerBatches(t *testing.T) {
	m := loadTiny(t, tinyName)
	g := newGated(m, true)
	s, err := NewScheduler(g, m.Tokenizer(), WithMaxBatch(8), WithPrefillChunk(4), WithMaxBatchTokens(16))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first, err := s.Submit(context.Background(), Request{Prompt: promptOf(m, testPrompts[0]), MaxTokens: 10})
	if err != nil {
		t.Fatal(err)
	}
	g.waitEntered(t) // the loop holds the first request's prefill
	streams := []*Stream{first}
	for _, p := range testPrompts[1:] {
		st, err := s.Submit(context.Background(), Request{Prompt: promptOf(m, p), MaxTokens: 10})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, st)
	}
	g.open()
	for i, st := range streams {
		got, _, final := collect(t, st)
		want := directGreedy(t, m, promptOf(m, testPrompts[i]), 10)
		if !slices.Equal(got, want) {
			t.Errorf("%q: got %v, want %v", testPrompts[i], got, want)
		}
		if final.Err != nil {
			t.Errorf("%q: got error %v", testPrompts[i], final.Err)
		}
	}
	stats := s.Stats()
	if stats.BatchedForwards == 0 || stats.MaxBatchSeen < len(testPrompts)-1 {
		t.Errorf("got %d batched forwards, max batch %d; want batching of about %d sequences",
			stats.BatchedForwards, stats.MaxBatchSeen, len(testPrompts))
	}
	if stats.Completed != uint64(len(testPrompts)) || stats.Active != 0 || stats.QueueDepth != 0 {
		t.Errorf("got stats %+v, want %d completed and nothing active", stats, len(testPrompts))
	}
}

func TestSchedulerStopsAndLimits(t *testing.T) {
	m := loadTiny(t, tinyName)
	s, err := NewScheduler(m, m.Tokenizer())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	prompt := promptOf(m, testPrompts[1])
	full := directGreedy(t, m, prompt, 24)
	fullText := m.Tokenizer().DecodeSkipSpecial(full)
	if len(fullText) < 8 {
		t.Skipf("greedy text %q too short for a stop string", fullText)
	}
	stop := fullText[4:7]
	tests := []struct {
		name       string
		req        Request
		wantText   string
		wantReason FinishReason
	}{
		{"max tokens", Request{Prompt: prompt, MaxTokens: 3}, m.Tokenizer().DecodeSkipSpecial(full[:3]), FinishLength},
		{"stop string", Request{Prompt: prompt, MaxTokens: 24, Stop: []string{stop}}, fullText[:strings.Index(fullText, stop)], FinishStop},
		{"end token", Request{Prompt: prompt, MaxTokens: 24, EndTokens: []int{full[2]}}, m.Tokenizer().DecodeSkipSpecial(full[:slices.Index(full, full[2])]), FinishEOS},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := s.Submit(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			_, text, final := collect(t, st)
			if text != tc.wantText || final.Finish != tc.wantReason {
				t.Errorf("got %q (%v), want %q (%v)", text, final.Finish, tc.wantText, tc.wantReason)
			}
		})
	}
}

func TestSchedulerContextFull(t *testing.T) {
	m := loadTiny(t, tinyName)
	s, err := NewScheduler(m, m.Tokenizer())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	maxPos := m.Config().MaxPositions
	prompt := make([]int, maxPos-3)
	for i := range prompt {
		prompt[i] = 100 + i%50
	}
	want := directGreedy(t, m, prompt, 3)
	st, err := s.Submit(context.Background(), Request{Prompt: prompt, MaxTokens: 100})
	if err != nil {
		t.Fatal(err)
	}
	got, _, final := collect(t, st)
	if len(want) == 3 && (final.Finish != FinishContext || len(got) != 4) {
		t.Errorf("got %d tokens, finish %v; want 4 tokens (the context holds %d), finish %v", len(got), final.Finish, maxPos, FinishContext)
	}
}

func TestSchedulerSeededSampling(t *testing.T) {
	m := loadTiny(t, tinyName)
	s, err := NewScheduler(m, m.Tokenizer())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	run := func(seed uint64) []int {
		st, err := s.Submit(context.Background(), Request{Prompt: promptOf(m, "Light"), MaxTokens: 16,
			Sampling: []sampling.Option{sampling.WithTemperature(1.5), sampling.WithSeed(seed)}})
		if err != nil {
			t.Fatal(err)
		}
		ids, _, _ := collect(t, st)
		return ids
	}
	a, b, c := run(1), run(1), run(2)
	if !slices.Equal(a, b) {
		t.Errorf("same seed: got %v and %v, want equal", a, b)
	}
	if slices.Equal(a, c) {
		t.Logf("seeds 1 and 2 gave the same %v (possible on a tiny model)", a)
	}
}

func TestSchedulerCancel(t *testing.T) {
	m := loadTiny(t, tinyName)
	g := newGated(m, true)
	s, err := NewScheduler(g, m.Tokenizer(), WithMaxBatch(1), WithQueueCapacity(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := s.Submit(ctx, Request{Prompt: promptOf(m, "Light"), MaxTokens: 200, EndTokens: []int{-1}})
	if err != nil {
		t.Fatal(err)
	}
	g.allow(t) // the prefill, which samples the first token
	if _, err := st.Recv(context.Background()); err != nil {
		t.Fatal(err)
	}
	cancel()
	g.open()
	ids, _, final := collect(t, st)
	if final.Finish != FinishCancelled || !errors.Is(final.Err, context.Canceled) || len(ids) != 0 {
		t.Errorf("got finish %v, err %v, %d more tokens; want cancelled with context.Canceled at once", final.Finish, final.Err, len(ids))
	}
	waitFor(t, "the slot to free", func() bool { return s.Stats().Active == 0 })
	// The freed slot serves the next request at once.
	next, err := s.Submit(context.Background(), Request{Prompt: promptOf(m, "Light"), MaxTokens: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, final := collect(t, next); final.Finish != FinishLength {
		t.Errorf("got finish %v after the cancelled request, want length", final.Finish)
	}
	if got := s.Stats().Cancelled; got != 1 {
		t.Errorf("got %d cancelled, want 1", got)
	}
}

func TestSchedulerDeadlineInQueue(t *testing.T) {
	m := loadTiny(t, tinyName)
	g := newGated(m, true)
	s, err := NewScheduler(g, m.Tokenizer(), WithMaxBatch(1), WithQueueCapacity(2))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	busy, err := s.Submit(context.Background(), Request{Prompt: promptOf(m, "Light"), MaxTokens: 2})
	if err != nil {
		t.Fatal(err)
	}
	g.waitEntered(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	late, err := s.Submit(ctx, Request{Prompt: promptOf(m, "Light"), MaxTokens: 2})
	if err != nil {
		t.Fatal(err)
	}
	<-ctx.Done()
	g.open()
	_, _, final := collect(t, late)
	if final.Finish != FinishCancelled || !errors.Is(final.Err, context.DeadlineExceeded) {
		t.Errorf("got finish %v, err %v; want cancelled by the deadline", final.Finish, final.Err)
	}
	if final.Usage.CompletionTokens != 0 {
		t.Errorf("got %d tokens for a request that never ran", final.Usage.CompletionTokens)
	}
	collect(t, busy)
}

func TestSchedulerQueueFull(t *testing.T) {
	m := loadTiny(t, tinyName)
	g := newGated(m, true)
	s, err := NewScheduler(g, m.Tokenizer(), WithMaxBatch(1), WithQueueCapacity(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req := Request{Prompt: promptOf(m, "Light"), MaxTokens: 2}
	a, err := s.Submit(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	g.waitEntered(t) // a is in the batch, held
	b, err := s.Submit(context.Background(), req)
	if err != nil {
		t.Fatalf("second request (queue of 1): %v", err)
	}
	_, err = s.Submit(context.Background(), req)
	var qf *QueueFullError
	if !errors.As(err, &qf) || !errors.Is(err, ErrQueueFull) || qf.RetryAfter <= 0 {
		t.Fatalf("third request: got %v, want a QueueFullError with a retry hint", err)
	}
	if st := s.Stats(); st.QueueDepth != 1 || st.Active != 1 || st.Rejected != 1 {
		t.Errorf("got stats %+v, want 1 queued, 1 active, 1 rejected", st)
	}
	g.open()
	collect(t, a)
	collect(t, b)
}

func TestSchedulerBadRequests(t *testing.T) {
	m := loadTiny(t, tinyName)
	s, err := NewScheduler(m, m.Tokenizer())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := m.Config()
	tests := []struct {
		name string
		req  Request
	}{
		{"empty prompt", Request{}},
		{"token out of range", Request{Prompt: []int{1, c.VocabSize}}},
		{"negative token", Request{Prompt: []int{-1}}},
		{"prompt fills the context", Request{Prompt: make([]int, c.MaxPositions)}},
		{"negative max tokens", Request{Prompt: []int{1}, MaxTokens: -1}},
		{"bad sampling", Request{Prompt: []int{1}, Sampling: []sampling.Option{sampling.WithTemperature(-1)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Submit(context.Background(), tc.req); !errors.Is(err, ErrInvalid) {
				t.Errorf("got %v, want ErrInvalid", err)
			}
		})
	}
	for _, o := range [][]SchedulerOption{{WithMaxBatch(0)}, {WithQueueCapacity(-1)}, {WithPrefillChunk(0)}, {WithMaxBatch(8), WithMaxBatchTokens(4)}} {
		if _, err := NewScheduler(m, m.Tokenizer(), o...); !errors.Is(err, ErrInvalid) {
			t.Errorf("options %d: got %v, want ErrInvalid", len(o), err)
		}
	}
}

func TestSchedulerCloseAndDrain(t *testing.T) {
	m := loadTiny(t, tinyName)
	t.Run("close fails pending", func(t *testing.T) {
		g := newGated(m, true)
		s, err := NewScheduler(g, m.Tokenizer(), WithMaxBatch(1))
		if err != nil {
			t.Fatal(err)
		}
		a, _ := s.Submit(context.Background(), Request{Prompt: []int{1}, MaxTokens: 5})
		g.waitEntered(t)
		b, _ := s.Submit(context.Background(), Request{Prompt: []int{1}, MaxTokens: 5})
		s.Close()
		for _, st := range []*Stream{a, b} {
			if _, _, final := collect(t, st); !errors.Is(final.Err, ErrClosed) {
				t.Errorf("got %v, want ErrClosed", final.Err)
			}
		}
		if _, err := s.Submit(context.Background(), Request{Prompt: []int{1}}); !errors.Is(err, ErrClosed) {
			t.Errorf("submit after close: got %v, want ErrClosed", err)
		}
	})
	t.Run("drain finishes in-flight", func(t *testing.T) {
		s, err := NewScheduler(m, m.Tokenizer(), WithMaxBatch(2))
		if err != nil {
			t.Fatal(err)
		}
		var streams []*Stream
		for i := 0; i < 4; i++ {
			st, err := s.Submit(context.Background(), Request{Prompt: []int{1, 2, 3}, MaxTokens: 6, EndTokens: []int{-1}})
			if err != nil {
				t.Fatal(err)
			}
			streams = append(streams, st)
		}
		if err := s.Drain(context.Background()); err != nil {
			t.Fatal(err)
		}
		for i, st := range streams {
			if _, _, final := collect(t, st); final.Err != nil {
				t.Errorf("request %d: got %v, want it finished", i, final.Err)
			}
		}
	})
}

func TestSchedulerConcurrentSubmitters(t *testing.T) {
	m := loadTiny(t, tinyName)
	s, err := NewScheduler(m, m.Tokenizer(), WithMaxBatch(4), WithQueueCapacity(64))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 12
	if testing.Short() {
		n = 6
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Go(func() {
			p := testPrompts[i%len(testPrompts)]
			st, err := s.Submit(context.Background(), Request{Prompt: promptOf(m, p), MaxTokens: 8})
			if err != nil {
				errs <- err
				return
			}
			got, _, _ := collect(t, st)
			if want := directGreedy(t, m, promptOf(m, p), 8); !slices.Equal(got, want) {
				errs <- fmt.Errorf("%q: got %v, want %v", p, got, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
