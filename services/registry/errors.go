package registry

import (
	"errors"
	"fmt"
)

// Error kinds; every error the Store returns for bad input or state wraps
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

// OffsetError is returned by WriteChunk when the chunk does not start at the
// upload's current offset; the client resumes from Offset. It wraps
// ErrFailedPrecondition.
type OffsetError struct {
	UploadID string
	Got      int64 // offset the client sent
	Offset   int64 // offset to send from
}

func (e *OffsetError) Error() string {
	return fmt.Sprintf("upload %s: chunk at offset %d, want offset %d: %v", e.UploadID, e.Got, e.Offset, ErrFailedPrecondition)
}

// Unwrap makes errors.Is(err, ErrFailedPrecondition) true.
func (e *OffsetError) Unwrap() error { return ErrFailedPrecondition }

func invalidf(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrInvalid)...)
}

func notFoundf(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrNotFound)...)
}

func preconditionf(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrFailedPrecondition)...)
}
