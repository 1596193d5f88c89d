package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for WithClock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func openStore(t *testing.T, dir string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(dir, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func digestOf(data []byte) Digest {
	sum := sha256.Sum256(data)
	return Digest("sha256:" + hex.EncodeToString(sum[:]))
}

// upload stores data through BeginUpload, WriteChunk (in chunks of 7 bytes)
// and CommitUpload.
func upload(t *testing.T, s *Store, data []byte) Digest {
	t.Helper()
	ctx := context.Background()
	d := digestOf(data)
	u, err := s.BeginUpload(ctx, d, int64(len(data)))
	if err != nil {
		t.Fatalf("BeginUpload: %v", err)
	}
	if u.State == UploadComplete {
		return d
	}
	off := u.Offset
	for off < int64(len(data)) {
		end := min(off+7, int64(len(data)))
		if off, err = s.WriteChunk(ctx, u.ID, off, data[off:end]); err != nil {
			t.Fatalf("WriteChunk(%d): %v", off, err)
		}
	}
	if _, err := s.CommitUpload(ctx, u.ID); err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	return d
}

func readBlob(t *testing.T, s *Store, d Digest) []byte {
	t.Helper()
	rc, size, err := s.OpenBlob(context.Background(), d)
	if err != nil {
		t.Fatalf("OpenBlob(%s): %v", d, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read blob %s: %v", d, err)
	}
	if int64(len(b)) != size {
		t.Fatalf("blob %s: read %d bytes, OpenBlob said %d", d, len(b), size)
	}
	return b
}

func ggufSpec(d Digest) VersionSpec {
	return VersionSpec{
		Files:    []BlobRef{{Path: "model.gguf", Digest: d}},
		Metadata: Metadata{Format: FormatGGUF, QuantType: QuantTQ20, Architecture: "bitnet"},
	}
}

func wantErr(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: got error %v, want %v", what, err, kind)
	}
}
