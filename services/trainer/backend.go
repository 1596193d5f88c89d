package trainer

import (
	"context"
	"io"

	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
)

// Source is where parents, data sets and tokenizers come from.
type Source interface {
	// Resolve returns the version a reference (NAME, NAME@N, NAME:ALIAS)
	// points at.
	Resolve(ctx context.Context, ref string) (registry.Version, error)
	// OpenBlob opens a blob for reading and returns its size.
	OpenBlob(ctx context.Context, d registry.Digest) (io.ReadCloser, int64, error)
}

// Sink is where results and checkpoints go.
type Sink interface {
	// PutBlob stores r's bytes as a blob (verified against want when set).
	PutBlob(ctx context.Context, r io.Reader, want registry.Digest) (registry.BlobInfo, error)
	// CreateVersion adds a version to a model.
	CreateVersion(ctx context.Context, name string, spec registry.VersionSpec) (registry.Version, error)
}

// StoreBackend is the Source and Sink of an in-process registry Store.
type StoreBackend struct{ store *registry.Store }

// NewStoreBackend adapts s; the caller keeps ownership of s.
func NewStoreBackend(s *registry.Store) *StoreBackend { return &StoreBackend{store: s} }

// Resolve implements Source.
func (b *StoreBackend) Resolve(ctx context.Context, ref string) (registry.Version, error) {
	return b.store.Resolve(ctx, ref)
}

// OpenBlob implements Source.
func (b *StoreBackend) OpenBlob(ctx context.Context, d registry.Digest) (io.ReadCloser, int64, error) {
	return b.store.OpenBlob(ctx, d)
}

// PutBlob implements Sink.
func (b *StoreBackend) PutBlob(ctx context.Context, r io.Reader, want registry.Digest) (registry.BlobInfo, error) {
	return b.store.PutBlob(ctx, r, want)
}

// CreateVersion implements Sink.
func (b *StoreBackend) CreateVersion(ctx context.Context, name string, spec registry.VersionSpec) (registry.Version, error) {
	return b.store.CreateVersion(ctx, name, spec)
}
