package registry

import (
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Space: the store refuses (ErrNoSpace, RESOURCE_EXHAUSTED) an upload that
// would take its blobs and unfinished uploads past the quota, or leave the
// file system with less free space than the floor, before it writes a byte
// of it. Sizes are announced, so BeginUpload reserves a blob's whole size;
// WriteChunk and PutBlob check the floor again as bytes arrive (others may
// fill the disk meanwhile). Under pressure, uploads idle for
// pressureIdle are reclaimed first (their clients resume from 0 if they
// come back), so abandoned pushes never hold space another needs.

// pressureIdle is how long an upload must have been idle to be reclaimed
// when space is short.
const pressureIdle = time.Minute

// WithQuota bounds the bytes of stored blobs plus the announced sizes of
// unfinished uploads (0: none).
func WithQuota(bytes int64) Option { return func(o *options) { o.quota = bytes } }

// WithMinFreeBytes refuses writes that would leave less than bytes free on
// the store's file system (default 1 GiB; negative: no floor).
func WithMinFreeBytes(bytes int64) Option { return func(o *options) { o.minFree = bytes } }

// DefaultMinFreeBytes is the default free-space floor.
const DefaultMinFreeBytes = 1 << 30

// Usage is how much space the store holds.
type Usage struct {
	BlobBytes     int64 // stored blobs
	UploadBytes   int64 // announced sizes of active uploads
	UploadWritten int64 // bytes of active uploads on disk
	Quota         int64 // 0: none
	FreeBytes     int64 // free space on the file system (-1: unknown)
	MinFreeBytes  int64 // the floor (<= 0: none)
}

// Usage reports the space the store holds and has left.
func (s *Store) Usage(ctx context.Context) (Usage, error) {
	u := Usage{Quota: s.opts.quota, FreeBytes: diskFree(s.dir), MinFreeBytes: s.opts.minFree}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		now := s.now()
		if err := tx.Bucket(bucketBlobs).ForEach(func(k, v []byte) error {
			var b blobRec
			if err := decodeJSON(k, v, &b); err != nil {
				return err
			}
			u.BlobBytes += b.Size
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketUploads).ForEach(func(k, v []byte) error {
			var r uploadRec
			if err := decodeJSON(k, v, &r); err != nil {
				return err
			}
			if r.toUpload(s.opts.uploadTTL, now).State == UploadActive {
				u.UploadBytes += r.Size
				u.UploadWritten += r.Offset
			}
			return nil
		})
	})
	if err != nil {
		return Usage{}, fmt.Errorf("usage: %w", err)
	}
	return u, nil
}

// room checks that size more bytes fit the quota and the floor, besides
// what active uploads will still write.
func (u Usage) room(size int64) error {
	if u.Quota > 0 && u.BlobBytes+u.UploadBytes+size > u.Quota {
		return fmt.Errorf("%d bytes would pass the quota: %d stored, %d reserved by unfinished uploads, quota %d: %w",
			size, u.BlobBytes, u.UploadBytes, u.Quota, ErrNoSpace)
	}
	if u.MinFreeBytes > 0 && u.FreeBytes >= 0 && u.FreeBytes-(u.UploadBytes-u.UploadWritten)-size < u.MinFreeBytes {
		return fmt.Errorf("%d bytes would leave less than %d bytes free (%d free, %d still to come for unfinished uploads): %w",
			size, u.MinFreeBytes, u.FreeBytes, u.UploadBytes-u.UploadWritten, ErrNoSpace)
	}
	return nil
}

// reserve checks that a new upload of size bytes fits; when it does not,
// uploads idle for pressureIdle are reclaimed and it is checked again.
func (s *Store) reserve(ctx context.Context, size int64) error {
	if s.opts.quota <= 0 && s.opts.minFree <= 0 {
		return nil
	}
	u, err := s.Usage(ctx)
	if err != nil {
		return err
	}
	if err := u.room(size); err == nil {
		return nil
	}
	if _, err := s.reclaimIdle(ctx, pressureIdle); err != nil {
		return err
	}
	if u, err = s.Usage(ctx); err != nil {
		return err
	}
	return u.room(size)
}

// checkFree checks the floor before n more bytes are written.
func (s *Store) checkFree(n int64) error {
	if s.opts.minFree <= 0 {
		return nil
	}
	if free := diskFree(s.dir); free >= 0 && free-n < s.opts.minFree {
		return fmt.Errorf("%d bytes would leave less than %d bytes free (%d free): %w", n, s.opts.minFree, free, ErrNoSpace)
	}
	return nil
}

// reclaimIdle deletes the uploads not written to for idle, with their
// bytes, and returns their IDs.
func (s *Store) reclaimIdle(ctx context.Context, idle time.Duration) ([]string, error) {
	var ids []string
	err := s.view(ctx, func(tx *bolt.Tx) error {
		now := s.now()
		return tx.Bucket(bucketUploads).ForEach(func(k, v []byte) error {
			var r uploadRec
			if err := decodeJSON(k, v, &r); err != nil {
				return err
			}
			if r.State == UploadActive && !now.Before(r.UpdateTime.Add(idle)) {
				ids = append(ids, r.ID)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	var rep GCReport
	for _, id := range ids {
		if err := s.removeUpload(ctx, id, idle, &rep); err != nil {
			return rep.Uploads, err
		}
	}
	return rep.Uploads, nil
}
