package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	bolt "go.etcd.io/bbolt"
)

// ScrubReport is what Scrub found.
type ScrubReport struct {
	Checked int      // blobs hashed
	Bytes   int64    // bytes read
	Corrupt []Digest // blobs whose file does not hash to their digest (now marked corrupt)
}

// Scrub hashes every stored blob's file and compares it with the blob's
// digest: a match marks the blob verified, a mismatch (or a missing file)
// marks it corrupt, so that reads fail with ErrDigestMismatch instead of
// serving wrong bytes and the next upload of the blob replaces the file.
// It reads every byte of the store; run it when the integrity of what is
// stored is in doubt (after a crash, a disk error) or on a schedule.
func (s *Store) Scrub(ctx context.Context) (ScrubReport, error) {
	var rep ScrubReport
	var all []Digest
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBlobs).ForEach(func(k, _ []byte) error {
			d, err := ParseDigest(string(k))
			if err != nil {
				return err
			}
			all = append(all, d)
			return nil
		})
	})
	if err != nil {
		return rep, fmt.Errorf("scrub: %w", err)
	}
	for _, d := range all {
		ok, n, err := s.verifyBlob(ctx, d, true)
		if err != nil {
			return rep, fmt.Errorf("scrub: blob %s: %w", d, err)
		}
		rep.Checked++
		rep.Bytes += n
		if !ok {
			rep.Corrupt = append(rep.Corrupt, d)
		}
	}
	return rep, nil
}

// checkStoredBlob hashes a stored blob that has not been verified yet (one
// stored by an older version) before BeginUpload may skip its upload.
func (s *Store) checkStoredBlob(ctx context.Context, d Digest) error {
	var b blobRec
	var ok bool
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		ok, err = getJSON(tx.Bucket(bucketBlobs), []byte(d.Hex()), &b)
		return err
	})
	if err != nil || !ok || b.Verified || b.Corrupt {
		return err
	}
	_, _, err = s.verifyBlob(ctx, d, false)
	return err
}

// verifyBlob hashes blob d's file and records the outcome (verified, or
// corrupt); it reports whether the file matched and how many bytes it
// read. A blob collected meanwhile counts as a match; unless all, a blob
// verified meanwhile is not hashed again.
func (s *Store) verifyBlob(ctx context.Context, d Digest, all bool) (bool, int64, error) {
	s.gcMu.RLock() // GC does not remove the file while it is read
	defer s.gcMu.RUnlock()
	var b blobRec
	var ok bool
	if err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		ok, err = getJSON(tx.Bucket(bucketBlobs), []byte(d.Hex()), &b)
		return err
	}); err != nil || !ok || (!all && b.Verified) {
		return true, 0, err
	}
	path := s.blobPath(d)
	f, err := os.Open(path)
	var got string
	var n int64
	var fi os.FileInfo
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Recorded without its file: as corrupt as a file can be.
	case err != nil:
		return false, 0, err
	default:
		h := sha256.New()
		n, err = io.Copy(h, &ctxReader{ctx: ctx, r: f})
		if err == nil {
			fi, err = f.Stat()
		}
		f.Close()
		if err != nil {
			return false, n, err
		}
		got = hex.EncodeToString(h.Sum(nil))
	}
	match := got == d.Hex() && n == b.Size
	err = s.update(ctx, func(tx *bolt.Tx) error {
		blobs := tx.Bucket(bucketBlobs)
		var cur blobRec
		ok, err := getJSON(blobs, []byte(d.Hex()), &cur)
		if err != nil || !ok {
			return err
		}
		if fi != nil {
			// An upload that repaired the blob meanwhile renamed a new
			// file into place: what was hashed is gone.
			if now, err := os.Stat(path); err != nil || !os.SameFile(fi, now) {
				return nil
			}
		}
		cur.Verified, cur.Corrupt = match, !match
		return putJSON(blobs, []byte(d.Hex()), &cur)
	})
	return match, n, err
}

// hashFile returns the hex sha256 of a file that must hold exactly size
// bytes.
func hashFile(ctx context.Context, path string, size int64) (string, error) {
	h := sha256.New()
	n, err := copyFile(ctx, h, path, size+1)
	if err != nil {
		return "", err
	}
	if n != size {
		return "", fmt.Errorf("file has %d bytes, want %d: %w", n, size, ErrFailedPrecondition)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// copyFile copies up to limit bytes of a file to w.
func copyFile(ctx context.Context, w io.Writer, path string, limit int64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return io.Copy(w, &ctxReader{ctx: ctx, r: io.LimitReader(f, limit)})
}
