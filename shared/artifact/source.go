package artifact

import (
	"context"
	"io"
)

// Source is what the services that consume models (the quantizer's
// checkpoints, the trainer's parents, data sets and tokenizers) read from a
// registry: versions and blobs.
type Source interface {
	// Resolve returns the version a reference (NAME, NAME@N, NAME:ALIAS)
	// points at.
	Resolve(ctx context.Context, ref string) (Version, error)
	// OpenBlob opens a blob for reading and returns its size.
	OpenBlob(ctx context.Context, d Digest) (io.ReadCloser, int64, error)
}

// Sink is where services that produce models (the quantizer, the trainer)
// store results and checkpoints.
type Sink interface {
	// PutBlob stores r's bytes as a blob (verified against want when set).
	PutBlob(ctx context.Context, r io.Reader, want Digest) (BlobInfo, error)
	// CreateVersion adds a version to a model.
	CreateVersion(ctx context.Context, name string, spec VersionSpec) (Version, error)
}
