package inference

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
)

// Error kinds; the errors of this package wrap one of them (test with
// errors.Is) and the server maps each to a gRPC code.
var (
	// ErrNotFound: no such model (NOT_FOUND).
	ErrNotFound = errors.New("not found")
	// ErrInvalid: a malformed request (INVALID_ARGUMENT).
	ErrInvalid = errors.New("invalid argument")
	// ErrQueueFull: the scheduler's queue is full (RESOURCE_EXHAUSTED); the
	// error is a *QueueFullError with a retry hint.
	ErrQueueFull = errors.New("queue full")
	// ErrOverBudget: a model does not fit the memory budget even after
	// evicting every idle model (RESOURCE_EXHAUSTED).
	ErrOverBudget = errors.New("memory budget exceeded")
	// ErrUnmet: the node lacks a required kernel path or feature
	// (FAILED_PRECONDITION).
	ErrUnmet = errors.New("hardware constraint not met")
	// ErrClosed: the scheduler, manager or server is shut down (UNAVAILABLE).
	ErrClosed = errors.New("closed")
	// ErrBadModel: the model's files cannot be loaded (malformed config,
	// header or tensors, no tokenizer): FAILED_PRECONDITION, the request is
	// fine but the stored model is not.
	ErrBadModel = errors.New("model files cannot be loaded")
	// ErrUnsupported: the model cannot serve the request, e.g. Embed on a
	// causal LM (FAILED_PRECONDITION).
	ErrUnsupported = errors.New("not supported by the model")
)

// QueueFullError is returned by Scheduler.Submit when the queue is full. It
// wraps ErrQueueFull.
type QueueFullError struct {
	Waiting    int           // requests waiting for a batch slot when this one was refused
	Capacity   int           // queue capacity
	RetryAfter time.Duration // estimated time until a slot frees
}

func (e *QueueFullError) Error() string {
	return fmt.Sprintf("%d requests waiting (capacity %d), retry after %v: %v",
		e.Waiting, e.Capacity, e.RetryAfter.Round(time.Millisecond), ErrQueueFull)
}

// Unwrap makes errors.Is(err, ErrQueueFull) true.
func (e *QueueFullError) Unwrap() error { return ErrQueueFull }

func invalidf(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrInvalid)...)
}

func notFoundf(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrNotFound)...)
}

// toStatus maps an error of this package (or a context error) to a gRPC
// status error; errors that are already statuses pass through.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var qf *QueueFullError
	switch {
	case errors.As(err, &qf):
		st := status.New(codes.ResourceExhausted, err.Error())
		if d, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(qf.RetryAfter)}); derr == nil {
			st = d
		}
		return st.Err()
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrInvalid), errors.Is(err, modelv1.ErrInvalidRef):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrQueueFull), errors.Is(err, ErrOverBudget):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, ErrUnmet), errors.Is(err, ErrBadModel), errors.Is(err, ErrUnsupported):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, ErrClosed):
		return status.Error(codes.Unavailable, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}
