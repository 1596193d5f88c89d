package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.uber.org/zap"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Store keeps a service's job records in an embedded database (bbolt, as
// the registry keeps its records), so that a restart, even after a
// SIGKILL, finds its jobs again: every Put is one durable transaction. The
// records are the service's own, as JSON, keyed by job ID. It is safe for
// concurrent use.
type Store struct {
	db *bolt.DB
}

var bucketJobs = []byte("jobs")

// storeLockTimeout bounds the wait for a database another process holds.
const storeLockTimeout = 2 * time.Second

// OpenStore opens (creating it and its directory when missing) the job
// database at path. Close releases it.
func OpenStore(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("open job store: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: storeLockTimeout})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open job store %s: database locked by another process: %w", path, err)
		}
		return nil, fmt.Errorf("open job store %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketJobs)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("open job store %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Put writes v (JSON) as the record of job id, replacing the previous one.
func (s *Store) Put(id string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("save job %s: %w", id, err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketJobs).Put([]byte(id), b) }); err != nil {
		return fmt.Errorf("save job %s: %w", id, err)
	}
	return nil
}

// Delete forgets the records of the jobs (missing ones are no error).
func (s *Store) Delete(ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketJobs)
		for _, id := range ids {
			if err := b.Delete([]byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete jobs: %w", err)
	}
	return nil
}

// Has reports whether job id has a record.
func (s *Store) Has(id string) bool {
	var ok bool
	_ = s.db.View(func(tx *bolt.Tx) error {
		ok = tx.Bucket(bucketJobs).Get([]byte(id)) != nil
		return nil
	})
	return ok
}

// Each calls fn with every record (its ID and JSON, valid only during the
// call), in ID order, until fn returns an error.
func (s *Store) Each(fn func(id string, data []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketJobs).ForEach(func(k, v []byte) error { return fn(string(k), v) })
	})
}

// Load decodes every record of s with decode, in ID order, and returns
// the jobs sorted by seq. A record decode rejects (a newer format, a
// damaged write) is logged and left out, not an error: one unreadable
// record must not keep a service from starting at every restart, and it
// stays in the store for an operator.
func Load[J any](s *Store, log *zap.Logger, decode func(data []byte, id string) (J, error), seq func(J) uint64) ([]J, error) {
	var loaded []J
	err := s.Each(func(id string, b []byte) error {
		j, err := decode(b, id)
		if err != nil {
			log.Error("job record skipped: cannot decode it", zap.String("job", id), zap.Error(err))
			return nil
		}
		loaded = append(loaded, j)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(loaded, func(a, b J) int { return cmp.Compare(seq(a), seq(b)) })
	return loaded, nil
}

// ErrorKind names an error kind, so that a persisted job's error keeps its
// kind (and so its status code) across a restart.
type ErrorKind struct {
	Name string
	Err  error
}

// SavedKinds names the shared kinds and context.Canceled for SaveError;
// services append their own and those they relay (a function so that no
// package state can be mutated).
func SavedKinds() []ErrorKind {
	return []ErrorKind{
		{"invalid", ErrInvalid}, {"not_found", ErrNotFound}, {"queue_full", ErrQueueFull},
		{"closed", ErrClosed}, {"internal", ErrInternal}, {"canceled", context.Canceled},
	}
}

// SavedError is a job's error as persisted: its message and the name of
// the first of the kinds it wraps ("" for none).
type SavedError struct {
	Kind    string `json:"kind,omitempty"`
	Message string `json:"message"`
}

// SaveError returns err as persisted (nil for a nil err).
func SaveError(err error, kinds []ErrorKind) *SavedError {
	if err == nil {
		return nil
	}
	s := &SavedError{Message: err.Error()}
	for _, k := range kinds {
		if errors.Is(err, k.Err) {
			s.Kind = k.Name
			break
		}
	}
	return s
}

// Restore returns the error with its message, wrapping its kind (nil for a
// nil s).
func (s *SavedError) Restore(kinds []ErrorKind) error {
	if s == nil {
		return nil
	}
	e := &restoredError{msg: s.Message}
	for _, k := range kinds {
		if k.Name == s.Kind {
			e.kind = k.Err
			break
		}
	}
	return e
}

// restoredError is a persisted job error: its message, wrapping its kind.
type restoredError struct {
	msg  string
	kind error
}

func (e *restoredError) Error() string { return e.msg }
func (e *restoredError) Unwrap() error { return e.kind }
