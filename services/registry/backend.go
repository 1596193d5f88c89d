package registry

import (
	"context"
	"io"

	"github.com/bitnet-mesh/bitnet-mesh/shared/artifact"
)

// Source and Sink are artifact.Source and artifact.Sink: what the services
// that consume and produce models need of a registry.
type (
	Source = artifact.Source
	Sink   = artifact.Sink
)

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
