package sdk

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrDigestMismatch is wrapped by the error of a transfer whose bytes do
// not hash to the expected sha256 (a corrupt blob or a file changed while
// it was read).
var ErrDigestMismatch = errors.New("sha256 mismatch")

// Error is a failed call: the SDK operation and the server's status. It
// prints as "OP: CODE: MESSAGE" and keeps the status, so status.Code(err)
// and status.FromError(err) see it through any wrapping.
type Error struct {
	Op     string
	Status *status.Status
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Op, e.Status.Code(), e.Status.Message())
}

// GRPCStatus returns the server's status (for package status).
func (e *Error) GRPCStatus() *status.Status { return e.Status }

// Code returns the status code.
func (e *Error) Code() codes.Code { return e.Status.Code() }

// wrap adds op to err: a gRPC status error becomes an *Error, anything
// else is wrapped with %w.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *Error
	if errors.As(err, &se) {
		return fmt.Errorf("%s: %w", op, err)
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.OK {
		return &Error{Op: op, Status: st}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// invalidArgument reports a bad argument caught before any call, with the
// status a server would have answered.
func invalidArgument(op string, err error) error {
	return &Error{Op: op, Status: status.New(codes.InvalidArgument, err.Error())}
}
