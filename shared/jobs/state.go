package jobs

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/errcode"
)

// Error kinds shared by the job services (test with errors.Is); a service
// adds its own (a bad checkpoint, a parent that cannot be fine-tuned) and
// the kinds of the services it relays. ErrorKinds maps them to gRPC codes.
var (
	// ErrNotFound: no job with that ID.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: a malformed request or argument.
	ErrInvalid = errors.New("invalid argument")
	// ErrQueueFull: the job queue is at its limit; retry later.
	ErrQueueFull = errors.New("queue full")
	// ErrClosed: the service has been closed (services wrap it with their
	// name: "quantizer closed").
	ErrClosed = errors.New("closed")
	// ErrInternal: a job stopped on a bug (a panic, whose details go to the
	// log, never to the client).
	ErrInternal = errors.New("internal error")
)

// ErrorKinds maps the shared error kinds to gRPC codes (a function so that
// no package state can be mutated).
func ErrorKinds() []errcode.Kind {
	return []errcode.Kind{
		{Err: ErrNotFound, Code: codes.NotFound},
		{Err: ErrInvalid, Code: codes.InvalidArgument},
		{Err: ErrQueueFull, Code: codes.ResourceExhausted},
		{Err: ErrClosed, Code: codes.Unavailable},
		{Err: ErrInternal, Code: codes.Internal},
	}
}

// State is a job's lifecycle state.
type State int

// Job states.
const (
	StateQueued     State = iota + 1 // waiting for a worker
	StateRunning                     // being worked on
	StateSucceeded                   // done: the results are set
	StateFailed                      // stopped by an error
	StateCancelling                  // cancel requested while running
	StateCancelled                   // stopped by a cancel (or a Close)
)

func (s State) String() string {
	switch s {
	case StateQueued:
		return "queued"
	case StateRunning:
		return "running"
	case StateSucceeded:
		return "succeeded"
	case StateFailed:
		return "failed"
	case StateCancelling:
		return "cancelling"
	case StateCancelled:
		return "cancelled"
	}
	return "unknown"
}

// Terminal reports whether the job can no longer change.
func (s State) Terminal() bool {
	return s == StateSucceeded || s == StateFailed || s == StateCancelled
}

// Valid reports whether s is one of the states above.
func (s State) Valid() bool { return s >= StateQueued && s <= StateCancelled }

// statesPB is a function so that no package state can be mutated.
func statesPB() [7]modelv1.JobState {
	return [...]modelv1.JobState{
		StateQueued:     modelv1.JobState_JOB_STATE_QUEUED,
		StateRunning:    modelv1.JobState_JOB_STATE_RUNNING,
		StateSucceeded:  modelv1.JobState_JOB_STATE_SUCCEEDED,
		StateFailed:     modelv1.JobState_JOB_STATE_FAILED,
		StateCancelling: modelv1.JobState_JOB_STATE_CANCELLING,
		StateCancelled:  modelv1.JobState_JOB_STATE_CANCELLED,
	}
}

// StateToPB converts a state for the APIs (bitnet.model.v1.JobState).
func StateToPB(s State) modelv1.JobState {
	if s.Valid() {
		return statesPB()[s]
	}
	return modelv1.JobState_JOB_STATE_UNSPECIFIED
}

// StateFromPB converts an API state: UNSPECIFIED is 0 (no filter), an
// unknown value an error wrapping ErrInvalid.
func StateFromPB(s modelv1.JobState) (State, error) {
	if s == modelv1.JobState_JOB_STATE_UNSPECIFIED {
		return 0, nil
	}
	for st, p := range statesPB() {
		if p == s && st > 0 {
			return State(st), nil
		}
	}
	return 0, fmt.Errorf("state %v: %w", s, ErrInvalid)
}
