package errcode

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestCode(t *testing.T) {
	errInvalid := errors.New("invalid")
	errMine := errors.New("mine")
	kinds := []Kind{{errMine, codes.FailedPrecondition}, {errInvalid, codes.InvalidArgument}}
	tests := []struct {
		name string
		err  error
		want codes.Code
	}{
		{"nil", nil, codes.OK},
		{"status", status.Error(codes.NotFound, "x"), codes.NotFound},
		{"wrapped kind", fmt.Errorf("job: %w", errMine), codes.FailedPrecondition},
		{"first kind wins", fmt.Errorf("%w: %w", errInvalid, errMine), codes.FailedPrecondition},
		{"cancel", fmt.Errorf("stop: %w", context.Canceled), codes.Canceled},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded},
		{"kind before context", fmt.Errorf("%w: %w", errInvalid, context.Canceled), codes.InvalidArgument},
		{"other", errors.New("boom"), codes.Internal},
	}
	for _, tt := range tests {
		if got := Code(tt.err, kinds...); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
	if Status(nil, kinds...) != nil {
		t.Error("Status(nil): got an error, want nil")
	}
	st := status.Convert(Status(fmt.Errorf("job x: %w", errMine), kinds...))
	if st.Code() != codes.FailedPrecondition || st.Message() != "job x: mine" {
		t.Errorf("Status: got %v %q, want FailedPrecondition \"job x: mine\"", st.Code(), st.Message())
	}
	orig := status.Error(codes.Aborted, "as is")
	if got := Status(orig, kinds...); got != orig {
		t.Errorf("Status of a status error: got %v, want it unchanged", got)
	}
}
