package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// StatBlob returns a stored blob's size and reference count.
func (s *Store) StatBlob(ctx context.Context, digest Digest) (BlobInfo, error) {
	d, err := ParseDigest(string(digest))
	if err != nil {
		return BlobInfo{}, err
	}
	var info BlobInfo
	err = s.view(ctx, func(tx *bolt.Tx) error {
		var b blobRec
		ok, err := getJSON(tx.Bucket(bucketBlobs), []byte(d.Hex()), &b)
		if err != nil {
			return err
		}
		if !ok {
			return notFoundf("blob %s", d)
		}
		info = BlobInfo{Digest: d, Size: b.Size, RefCount: b.RefCount, CreateTime: b.CreateTime}
		return nil
	})
	if err != nil {
		return BlobInfo{}, fmt.Errorf("stat blob: %w", err)
	}
	return info, nil
}

// OpenBlob opens a stored blob for reading from any offset and returns its
// size. The caller closes it. A blob collected while open stays readable
// through the open file on Unix systems.
func (s *Store) OpenBlob(ctx context.Context, digest Digest) (io.ReadSeekCloser, int64, error) {
	info, err := s.StatBlob(ctx, digest)
	if err != nil {
		return nil, 0, fmt.Errorf("open blob: %w", err)
	}
	var b blobRec
	if err := s.view(ctx, func(tx *bolt.Tx) error {
		_, err := getJSON(tx.Bucket(bucketBlobs), []byte(info.Digest.Hex()), &b)
		return err
	}); err != nil {
		return nil, 0, fmt.Errorf("open blob: %w", err)
	}
	if b.Corrupt {
		return nil, 0, fmt.Errorf("open blob %s: its file does not hash to its digest (damaged on disk); upload the blob again to repair it: %w",
			info.Digest, ErrDigestMismatch)
	}
	f, err := os.Open(s.blobPath(info.Digest))
	if err != nil {
		return nil, 0, fmt.Errorf("open blob %s: recorded but unreadable: %w", info.Digest, err)
	}
	return f, info.Size, nil
}

// PutBlob stores the bytes of r as a blob in one call (for in-process
// producers such as the quantizer) and returns it. When want is not empty
// the bytes must hash to it (ErrDigestMismatch otherwise). The blob is
// protected from GC for the grace period.
func (s *Store) PutBlob(ctx context.Context, r io.Reader, want Digest) (BlobInfo, error) {
	if want != "" {
		d, err := ParseDigest(string(want))
		if err != nil {
			return BlobInfo{}, fmt.Errorf("put blob: %w", err)
		}
		want = d
	}
	f, err := os.CreateTemp(filepath.Join(s.dir, "uploads"), "put-*")
	if err != nil {
		return BlobInfo{}, fmt.Errorf("put blob: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // gone after a rename; cleans up otherwise
	h := sha256.New()
	limit := s.opts.maxBlobSize
	if s.opts.quota > 0 || s.opts.minFree > 0 {
		// The size is not known up front: what it has written so far must
		// fit, checked every spaceCheckEvery bytes.
		limit = min(limit, s.putRoom(ctx))
	}
	n, err := io.Copy(io.MultiWriter(f, h), &ctxReader{ctx: ctx, r: io.LimitReader(&spaceReader{s: s, r: r}, limit+1)})
	if err == nil && n > limit {
		if limit < s.opts.maxBlobSize {
			err = fmt.Errorf("more than the %d bytes the quota and free-space floor leave: %w", limit, ErrNoSpace)
		} else {
			err = fmt.Errorf("more than the limit of %d bytes: %w", limit, ErrTooLarge)
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return BlobInfo{}, fmt.Errorf("put blob: %w", err)
	}
	got := Digest(digestPrefix + hex.EncodeToString(h.Sum(nil)))
	if want != "" && got != want {
		return BlobInfo{}, fmt.Errorf("put blob: %d bytes hash to %s, want %s: %w: %w", n, got, want, ErrDigestMismatch, ErrInvalid)
	}
	info, err := s.storeBlob(ctx, tmp, got, n, nil)
	if err != nil {
		return BlobInfo{}, fmt.Errorf("put blob: %w", err)
	}
	return info, nil
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func dirOf(path string) string { return filepath.Dir(path) }

// putRoom is how many bytes PutBlob may write now (quota and floor).
func (s *Store) putRoom(ctx context.Context) int64 {
	u, err := s.Usage(ctx)
	if err != nil {
		return 0
	}
	room := int64(1<<63 - 1)
	if u.Quota > 0 {
		room = min(room, u.Quota-u.BlobBytes-u.UploadBytes)
	}
	if u.MinFreeBytes > 0 && u.FreeBytes >= 0 {
		room = min(room, u.FreeBytes-(u.UploadBytes-u.UploadWritten)-u.MinFreeBytes)
	}
	return max(room, 0)
}

// spaceCheckEvery is how often PutBlob checks the free-space floor as it
// writes.
const spaceCheckEvery = 64 << 20

// spaceReader checks the floor every spaceCheckEvery bytes read.
type spaceReader struct {
	s     *Store
	r     io.Reader
	since int64
}

func (sr *spaceReader) Read(p []byte) (int, error) {
	if sr.since >= spaceCheckEvery {
		if err := sr.s.checkFree(sr.since); err != nil {
			return 0, err
		}
		sr.since = 0
	}
	n, err := sr.r.Read(p)
	sr.since += int64(n)
	return n, err
}
