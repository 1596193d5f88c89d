package inference

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
)

func TestToStatus(t *testing.T) {
	_, badRef := modelv1.ParseRef("Bad")
	tests := []struct {
		err  error
		want codes.Code
	}{
		{notFoundf("model x"), codes.NotFound},
		{invalidf("prompt"), codes.InvalidArgument},
		{badRef, codes.InvalidArgument},
		{&QueueFullError{Capacity: 4, RetryAfter: time.Second}, codes.ResourceExhausted},
		{fmt.Errorf("load: %w", ErrOverBudget), codes.ResourceExhausted},
		{fmt.Errorf("x: %w", ErrUnmet), codes.FailedPrecondition},
		{fmt.Errorf("x: %w", ErrClosed), codes.Unavailable},
		{fmt.Errorf("x: %w", context.Canceled), codes.Canceled},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{status.Error(codes.Aborted, "kept"), codes.Aborted},
		{errors.New("boom"), codes.Internal},
	}
	for _, tc := range tests {
		if got := status.Code(toStatus(tc.err)); got != tc.want {
			t.Errorf("%v: got %v, want %v", tc.err, got, tc.want)
		}
	}
	if toStatus(nil) != nil {
		t.Error("nil error: got a status")
	}
}

func TestQueueFullErrorMessage(t *testing.T) {
	err := error(&QueueFullError{Waiting: 3, Capacity: 4, RetryAfter: 1500 * time.Millisecond})
	if got, want := err.Error(), "3 requests waiting (capacity 4), retry after 1.5s: queue full"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !errors.Is(err, ErrQueueFull) {
		t.Errorf("got %v, want it to wrap ErrQueueFull", err)
	}
}

func TestRateWindow(t *testing.T) {
	var r rateWindow
	now := time.Unix(1000, 0)
	for i := 0; i < 10; i++ {
		r.add(now.Add(time.Duration(i)*time.Second), 6)
		r.firstToken(now, time.Duration(i+1)*time.Millisecond)
	}
	tps, p50 := r.read(now.Add(9 * time.Second))
	if tps != 1 || p50 != 6*time.Millisecond {
		t.Errorf("got %v tok/s, p50 %v; want 1 tok/s (60 tokens a minute), 6ms", tps, p50)
	}
	if tps, p50 := r.read(now.Add(3 * time.Minute)); tps != 0 || p50 != 0 {
		t.Errorf("after the window: got %v, %v; want 0, 0", tps, p50)
	}
}

func TestFinishReasonString(t *testing.T) {
	for f, want := range map[FinishReason]string{FinishStop: "stop", FinishEOS: "eos", FinishLength: "length",
		FinishCancelled: "cancelled", FinishReason(99): "unknown"} {
		if got := f.String(); got != want {
			t.Errorf("%d: got %q, want %q", int(f), got, want)
		}
	}
}

func TestByteLevel(t *testing.T) {
	for in, want := range map[string]string{" the": "Ġthe", "\n": "Ċ", "a\tb": "aĉb", "é": "Ã©"} {
		if got := byteLevel(in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}
