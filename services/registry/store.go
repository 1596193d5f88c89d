package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Defaults of the Store's options.
const (
	DefaultMaxBlobSize = 256 << 30
	// DefaultUploadTTL is how long an upload may sit idle before GC
	// reclaims it (an hour: a push that failed does not hold its bytes for
	// a day; under space pressure idle uploads go sooner, see space.go).
	DefaultUploadTTL = time.Hour
	DefaultBlobGrace = time.Hour
)

// Bucket names of the database.
var (
	bucketModels   = []byte("models")   // name -> modelRec
	bucketVersions = []byte("versions") // name -> bucket of be32 version -> versionRec
	bucketSeq      = []byte("seq")      // name -> be32 last version number ever given (kept after delete)
	bucketBlobs    = []byte("blobs")    // hex sha256 -> blobRec
	bucketUploads  = []byte("uploads")  // upload id -> uploadRec
)

// Option configures a Store.
type Option func(*options)

type options struct {
	maxBlobSize int64
	uploadTTL   time.Duration
	blobGrace   time.Duration
	clock       func() time.Time
	lockTimeout time.Duration
	validate    Validator
	quota       int64
	minFree     int64
}

// WithMaxBlobSize caps the size of one blob (ErrTooLarge above it).
func WithMaxBlobSize(n int64) Option { return func(o *options) { o.maxBlobSize = n } }

// WithUploadTTL sets how long an upload may stay inactive before it
// expires; GC deletes expired uploads and their bytes.
func WithUploadTTL(d time.Duration) Option { return func(o *options) { o.uploadTTL = d } }

// WithBlobGrace sets how long a blob no version refers to is kept after it
// was uploaded (or announced again by BeginUpload), so that CreateVersion can
// still name it; the same age protects unrecorded files from GC.
func WithBlobGrace(d time.Duration) Option { return func(o *options) { o.blobGrace = d } }

// WithClock replaces time.Now (for tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// Store is a registry kept in one data directory. Its methods are safe for
// concurrent use. Only one Store (one process) may open a directory at a time.
type Store struct {
	dir  string
	db   *bolt.DB
	opts options

	// gcMu orders blob commits (read side) against blob removal (write
	// side), so that a blob is never removed between its rename into place
	// and its record's commit.
	gcMu sync.RWMutex

	mu      sync.Mutex
	uploads map[string]*uploadLock // per-upload write locks, by id
}

type uploadLock struct {
	mu    sync.Mutex
	users int
}

// Open opens (creating it when needed) the registry in dir.
func Open(dir string, opts ...Option) (*Store, error) {
	o := options{
		maxBlobSize: DefaultMaxBlobSize,
		uploadTTL:   DefaultUploadTTL,
		blobGrace:   DefaultBlobGrace,
		clock:       time.Now,
		lockTimeout: 2 * time.Second,
		minFree:     DefaultMinFreeBytes,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxBlobSize <= 0 || o.uploadTTL <= 0 || o.blobGrace < 0 || o.clock == nil || o.quota < 0 {
		return nil, fmt.Errorf("open registry %s: max blob size %d and upload ttl %v must be positive, blob grace %v not negative: %w",
			dir, o.maxBlobSize, o.uploadTTL, o.blobGrace, ErrInvalid)
	}
	for _, d := range []string{dir, filepath.Join(dir, "blobs", "sha256"), filepath.Join(dir, "uploads")} {
		if err := mkdirSync(d); err != nil {
			return nil, fmt.Errorf("open registry %s: %w", dir, err)
		}
	}
	db, err := bolt.Open(filepath.Join(dir, "registry.db"), 0o600, &bolt.Options{Timeout: o.lockTimeout})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open registry %s: database locked by another process: %w", dir, err)
		}
		return nil, fmt.Errorf("open registry %s: %w", dir, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketModels, bucketVersions, bucketSeq, bucketBlobs, bucketUploads} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open registry %s: init database: %w", dir, err)
	}
	return &Store{dir: dir, db: db, opts: o, uploads: make(map[string]*uploadLock)}, nil
}

// Close closes the database. Operations still running fail with ErrClosed.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close registry %s: %w", s.dir, err)
	}
	return nil
}

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// MaxBlobSize returns the size limit of one blob.
func (s *Store) MaxBlobSize() int64 { return s.opts.maxBlobSize }

func (s *Store) now() time.Time { return s.opts.clock().UTC() }

// view and update run a transaction, mapping a closed database to ErrClosed
// and checking ctx first.
func (s *Store) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return mapDBErr(s.db.View(fn))
}

func (s *Store) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return mapDBErr(s.db.Update(fn))
}

func mapDBErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	data := b.Get(key)
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("corrupt record %q: %w", key, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode record %q: %w", key, err)
	}
	return b.Put(key, data)
}

// lockUpload serializes writers of one upload; the returned func unlocks.
func (s *Store) lockUpload(id string) func() {
	s.mu.Lock()
	l := s.uploads[id]
	if l == nil {
		l = &uploadLock{}
		s.uploads[id] = l
	}
	l.users++
	s.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		s.mu.Lock()
		if l.users--; l.users == 0 {
			delete(s.uploads, id)
		}
		s.mu.Unlock()
	}
}
