package inference

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/sampling"
)

// FinishReason says why a request ended.
type FinishReason int

// Finish reasons.
const (
	FinishNone      FinishReason = iota // not finished
	FinishStop                          // a stop string was found
	FinishEOS                           // the model produced an end token
	FinishLength                        // MaxTokens were generated
	FinishContext                       // the model's context is full
	FinishCancelled                     // the client's context ended (Event.Err says how)
	FinishError                         // the engine failed (Event.Err)
)

var finishNames = [...]string{"", "stop", "eos", "length", "context_length", "cancelled", "error"}

// String returns the reason's name ("stop", "eos", "length", ...).
func (f FinishReason) String() string {
	if f < 0 || int(f) >= len(finishNames) {
		return "unknown"
	}
	return finishNames[f]
}

// Usage counts a request's tokens.
type Usage struct {
	PromptTokens     int
	CompletionTokens int // generated tokens, end token excluded
}

// Timings measure a request. Durations count from its submission.
type Timings struct {
	Queue      time.Duration // submitted -> admitted into the batch
	Prompt     time.Duration // admitted -> prompt processed (prefill)
	FirstToken time.Duration // submitted -> first token sampled
	Generation time.Duration // first token -> end
	Total      time.Duration // submitted -> end
	// PromptTokensPerSecond is prompt tokens over Prompt.
	PromptTokensPerSecond float64
	// TokensPerSecond is the tokens after the first over Generation.
	TokensPerSecond float64
}

// TokenLogprob is a generated token's log probability and the most likely
// alternatives at its position.
type TokenLogprob struct {
	ID      int
	Logprob float64
	Top     []sampling.TokenLogprob
}

// Event is one message of a request's result stream: the text and tokens
// produced since the previous event; the last one (Final) also carries the
// finish reason, usage and timings.
type Event struct {
	Text     string // valid UTF-8, never part of a stop string
	TokenIDs []int
	// Logprobs has one entry per TokenIDs entry when the request asked.
	Logprobs []TokenLogprob
	// Embedding is the result of an embedding request (Request.Embed), in
	// its only, final event: pooled and normalised as the model prescribes.
	Embedding []float32
	// TokenGap is the time from the sampling of the request's previous
	// generated token to that of this event's token (its inter-token
	// latency); zero for the first token and for events without tokens.
	TokenGap time.Duration
	Final    bool
	Finish   FinishReason
	// Err is set with FinishCancelled (the context's error) and FinishError.
	Err     error
	Usage   Usage
	Timings Timings
}

// Stream delivers a request's events in order. The scheduler never blocks on
// it: events queue until Recv takes them (at most one per generated token).
type Stream struct {
	mu     sync.Mutex
	events []Event
	final  bool // the final event was queued
	notify chan struct{}
}

func newStream() *Stream { return &Stream{notify: make(chan struct{}, 1)} }

// send queues ev; called by the scheduler's loop only.
func (s *Stream) send(ev Event) {
	s.mu.Lock()
	s.events = append(s.events, ev)
	s.final = s.final || ev.Final
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Recv returns the next event, waiting for it; io.EOF after the final event,
// or ctx's error when ctx ends first. Cancelling the request's context (the one
// given to Submit) ends the request at the next step boundary with a final
// FinishCancelled event.
func (s *Stream) Recv(ctx context.Context) (Event, error) {
	for {
		s.mu.Lock()
		if len(s.events) > 0 {
			ev := s.events[0]
			s.events[0] = Event{}
			s.events = s.events[1:]
			s.mu.Unlock()
			return ev, nil
		}
		done := s.final
		s.mu.Unlock()
		if done {
			return Event{}, io.EOF
		}
		select {
		case <-s.notify:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}
