// Package registry is the model registry's domain and storage layer: named
// models with numbered, immutable versions and movable aliases, whose files
// are content-addressed blobs (sha256).
//
// A Store keeps everything in one data directory:
//
//	registry.db             bbolt database: models, versions, aliases, blob and upload records
//	blobs/sha256/ab/abcd…   blob contents, named by their hex sha256
//	uploads/<id>            bytes of unfinished uploads (and put-* temp files of PutBlob)
//
// The database is the source of truth: a blob exists when its record does,
// and a file without a record is debris that GC removes once it is older
// than the grace period. Every acknowledged write is durable: upload bytes
// are fsynced before their offset is recorded, blobs are moved into place by
// rename (then the directory is fsynced) before their record is committed.
//
// Versions are numbered 1, 2, ... per model name and numbers are never
// reused, even after the version or the whole model is deleted. Blobs no
// version refers to are garbage-collected once their grace period (which
// starts when they are uploaded or announced again) has passed.
//
// Upload bytes live in uploads/ on the same file system as blobs/, so the
// final rename is atomic.
//
// Integrity: a blob is stored only once the bytes on disk hash to its
// name. CommitUpload hashes the upload's file (never the hash state saved
// while the bytes arrived); BeginUpload resuming an interrupted upload
// checks its acknowledged bytes against that saved state and restarts the
// upload from 0 when they differ. A stored blob not yet verified (stored by
// an older version) is hashed before an upload of it is skipped; one that
// does not match is marked corrupt: reads fail with ErrDigestMismatch and
// the next upload replaces its file, so a re-push repairs it. Scrub hashes
// every blob.
//
// Server adapts a Store to the bitnet.registry.v1 gRPC API. Errors wrap one of ErrNotFound, ErrAlreadyExists, ErrInvalid,
// ErrDigestMismatch, ErrFailedPrecondition, ErrTooLarge, ErrOutOfRange so
// that the gRPC layer (Server) maps them to status codes.
//
// The vocabulary of versions (references, digests, formats, quant types,
// metadata, the error kinds and the Source and Sink that the quantizer and
// trainer use) is package artifact's, so that those services do not import
// the registry; this package names it too. Backend is the Source and Sink
// of an in-process Store, Client the same over the gRPC API.
package registry
