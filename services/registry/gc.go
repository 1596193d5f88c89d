package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// GC removes blobs that no version refers to once their grace period is
// over, expired uploads with their bytes, and files that have no record and
// are older than the grace period (debris of a crash between writing a file
// and recording it). It reports what it removed. Deleting a model or version
// runs the blob part already.
func (s *Store) GC(ctx context.Context) (GCReport, error) {
	var rep GCReport
	if err := s.expireUploads(ctx, &rep); err != nil {
		return rep, fmt.Errorf("gc: %w", err)
	}
	if _, err := s.collect(ctx, &rep); err != nil {
		return rep, fmt.Errorf("gc: %w", err)
	}
	if err := s.sweep(ctx, &rep); err != nil {
		return rep, fmt.Errorf("gc: %w", err)
	}
	return rep, nil
}

// collect removes unreferenced blobs past their grace period: records
// first, then files, all under the GC lock so that no commit of the same
// blob interleaves.
func (s *Store) collect(ctx context.Context, rep *GCReport) (int, error) {
	if rep == nil {
		rep = &GCReport{}
	}
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	var gone []Digest
	var freed int64
	err := s.update(ctx, func(tx *bolt.Tx) error {
		now := s.now()
		blobs := tx.Bucket(bucketBlobs)
		c := blobs.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var b blobRec
			if err := decodeJSON(k, v, &b); err != nil {
				return err
			}
			if b.RefCount > 0 || now.Before(b.KeepUntil) {
				continue
			}
			d, err := ParseDigest(string(k))
			if err != nil {
				return err
			}
			if err := c.Delete(); err != nil {
				return err
			}
			gone = append(gone, d)
			freed += b.Size
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, d := range gone {
		if err := os.Remove(s.blobPath(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err) // left for the sweep
		}
	}
	rep.Blobs = append(rep.Blobs, gone...)
	rep.BytesFreed += freed
	return len(gone), errors.Join(errs...)
}

// expireUploads deletes uploads inactive for longer than the upload TTL
// (and completed ones after the same time), with their bytes.
func (s *Store) expireUploads(ctx context.Context, rep *GCReport) error {
	var ids []string
	err := s.view(ctx, func(tx *bolt.Tx) error {
		now := s.now()
		return tx.Bucket(bucketUploads).ForEach(func(k, v []byte) error {
			var r uploadRec
			if err := decodeJSON(k, v, &r); err != nil {
				return err
			}
			if !now.Before(r.UpdateTime.Add(s.opts.uploadTTL)) {
				ids = append(ids, r.ID)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := s.expireUpload(ctx, id, rep); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) expireUpload(ctx context.Context, id string, rep *GCReport) error {
	return s.removeUpload(ctx, id, s.opts.uploadTTL, rep)
}

// removeUpload deletes an upload not written to for idle (completed ones
// too), with its bytes.
func (s *Store) removeUpload(ctx context.Context, id string, idle time.Duration, rep *GCReport) error {
	unlock := s.lockUpload(id)
	defer unlock()
	removed := false
	err := s.update(ctx, func(tx *bolt.Tx) error {
		r, err := getUploadRec(tx, id)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			return err
		}
		if s.now().Before(r.UpdateTime.Add(idle)) {
			return nil // written to since the scan
		}
		removed = true
		return tx.Bucket(bucketUploads).Delete([]byte(id))
	})
	if err != nil || !removed {
		return err
	}
	if err := os.Remove(s.uploadPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	rep.Uploads = append(rep.Uploads, id)
	return nil
}

// sweep removes blob and upload files that have no record and were not
// modified for the grace period (or the upload TTL for upload files).
func (s *Store) sweep(ctx context.Context, rep *GCReport) error {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	now := s.opts.clock()
	stale := func(fi fs.FileInfo, age time.Duration) bool { return now.Sub(fi.ModTime()) >= age }

	root := filepath.Join(s.dir, "blobs", "sha256")
	err := filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if de.IsDir() {
			return nil
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		if !stale(fi, s.opts.blobGrace) {
			return nil
		}
		name := de.Name()
		d, perr := ParseDigest(name)
		known := false
		if perr == nil && filepath.Base(filepath.Dir(path)) == name[:2] && len(name) == 64 {
			if err := s.view(ctx, func(tx *bolt.Tx) error {
				known = tx.Bucket(bucketBlobs).Get([]byte(d.Hex())) != nil
				return nil
			}); err != nil {
				return err
			}
		}
		if known {
			return nil
		}
		if err := os.Remove(path); err != nil {
			return err
		}
		rep.OrphanFiles++
		return nil
	})
	if err != nil {
		return fmt.Errorf("sweep blobs: %w", err)
	}

	entries, err := os.ReadDir(filepath.Join(s.dir, "uploads"))
	if err != nil {
		return fmt.Errorf("sweep uploads: %w", err)
	}
	for _, de := range entries {
		fi, err := de.Info()
		if err != nil || de.IsDir() || !stale(fi, s.opts.uploadTTL) {
			continue
		}
		name := de.Name()
		known := false
		if checkUploadID(name) == nil {
			if err := s.view(ctx, func(tx *bolt.Tx) error {
				known = tx.Bucket(bucketUploads).Get([]byte(name)) != nil
				return nil
			}); err != nil {
				return err
			}
		} else if !strings.HasPrefix(name, "put-") {
			continue // not ours
		}
		if known {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, "uploads", name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		rep.OrphanFiles++
	}
	return nil
}

// RunGC runs GC every interval until ctx is done, passing each report (and
// error) to report when it is not nil; it returns ctx's error. The caller
// owns the goroutine it runs in.
func (s *Store) RunGC(ctx context.Context, interval time.Duration, report func(GCReport, error)) error {
	if interval <= 0 {
		return fmt.Errorf("run gc: interval %v: %w", interval, ErrInvalid)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			rep, err := s.GC(ctx)
			if report != nil && ctx.Err() == nil {
				report(rep, err)
			}
		}
	}
}
