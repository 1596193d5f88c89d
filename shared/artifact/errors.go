package artifact

import (
	"errors"

	"google.golang.org/grpc/codes"

	"github.com/bitnet-mesh/bitnet-mesh/shared/errcode"
)

// Error kinds; every error a registry (its Store, or a client of its API) returns for bad input or state wraps
// exactly one of them (test with errors.Is).
var (
	// ErrNotFound: the model, version, alias, blob or upload does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: the model name is taken.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalid: a malformed name, reference, digest, path or argument.
	ErrInvalid = errors.New("invalid argument")
	// ErrDigestMismatch: uploaded bytes do not hash to the announced sha256.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrFailedPrecondition: the request is well-formed but the state forbids
	// it (missing blob, alias still pointing at a version, wrong offset, ...).
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrTooLarge: a blob above the store's size limit.
	ErrTooLarge = errors.New("too large")
	// ErrOutOfRange: an offset beyond the end of a blob.
	ErrOutOfRange = errors.New("out of range")
	// ErrNoSpace: the upload would pass the store's quota or its
	// free-space floor (RESOURCE_EXHAUSTED).
	ErrNoSpace = errors.New("no space")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("registry closed")
)

// ErrorKinds maps the error kinds to gRPC codes, for the registry's
// handlers and for services that relay its errors (a function so that no
// package state can be mutated).
func ErrorKinds() []errcode.Kind {
	return []errcode.Kind{
		{Err: ErrNotFound, Code: codes.NotFound},
		{Err: ErrAlreadyExists, Code: codes.AlreadyExists},
		{Err: ErrInvalid, Code: codes.InvalidArgument},
		{Err: ErrDigestMismatch, Code: codes.DataLoss},
		{Err: ErrFailedPrecondition, Code: codes.FailedPrecondition},
		{Err: ErrTooLarge, Code: codes.ResourceExhausted},
		{Err: ErrNoSpace, Code: codes.ResourceExhausted},
		{Err: ErrOutOfRange, Code: codes.OutOfRange},
		{Err: ErrClosed, Code: codes.Unavailable},
	}
}
