package registry

import (
	"fmt"

	"github.com/bitnet-mesh/bitnet-mesh/shared/artifact"
)

// Error kinds (package artifact's); every error the Store returns for bad
// input or state wraps exactly one of them (test with errors.Is).
var (
	ErrNotFound           = artifact.ErrNotFound
	ErrAlreadyExists      = artifact.ErrAlreadyExists
	ErrInvalid            = artifact.ErrInvalid
	ErrDigestMismatch     = artifact.ErrDigestMismatch
	ErrFailedPrecondition = artifact.ErrFailedPrecondition
	ErrTooLarge           = artifact.ErrTooLarge
	ErrOutOfRange         = artifact.ErrOutOfRange
	ErrNoSpace            = artifact.ErrNoSpace
	ErrClosed             = artifact.ErrClosed
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
