package registry

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

// Backend is the Source and Sink of an in-process Store; a gRPC client
// implements the same interfaces for services in other processes.
type Backend struct{ store *Store }

// NewBackend adapts s; the caller keeps ownership of s.
func NewBackend(s *Store) *Backend { return &Backend{store: s} }

// Resolve implements Source.
func (b *Backend) Resolve(ctx context.Context, ref string) (Version, error) {
	return b.store.Resolve(ctx, ref)
}

// OpenBlob implements Source.
func (b *Backend) OpenBlob(ctx context.Context, d Digest) (io.ReadCloser, int64, error) {
	return b.store.OpenBlob(ctx, d)
}

// PutBlob implements Sink.
func (b *Backend) PutBlob(ctx context.Context, r io.Reader, want Digest) (BlobInfo, error) {
	return b.store.PutBlob(ctx, r, want)
}

// CreateVersion implements Sink.
func (b *Backend) CreateVersion(ctx context.Context, name string, spec VersionSpec) (Version, error) {
	return b.store.CreateVersion(ctx, name, spec)
}
