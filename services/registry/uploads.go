package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"

	bolt "go.etcd.io/bbolt"
)

// BeginUpload starts the resumable upload of a blob with a known sha256 and
// size. When the blob is stored already it returns an upload in state
// UploadComplete with no ID (and protects the blob from GC for the grace
// period, so that a version can name it); when an active upload of the same
// blob exists it returns that one, so that the client resumes from its
// offset. ErrTooLarge above the size limit.
func (s *Store) BeginUpload(ctx context.Context, digest Digest, size int64) (Upload, error) {
	d, err := ParseDigest(string(digest))
	if err != nil {
		return Upload{}, fmt.Errorf("begin upload: %w", err)
	}
	if size < 0 {
		return Upload{}, fmt.Errorf("begin upload of %s: %w", d, invalidf("size %d", size))
	}
	if size > s.opts.maxBlobSize {
		return Upload{}, fmt.Errorf("begin upload of %s: size %d above the limit %d: %w", d, size, s.opts.maxBlobSize, ErrTooLarge)
	}
	if err := ctx.Err(); err != nil {
		return Upload{}, err
	}
	// A stored blob is only announced as complete (so the client sends
	// nothing) once its file is known to hash to its name.
	if err := s.checkStoredBlob(ctx, d); err != nil {
		return Upload{}, fmt.Errorf("begin upload of %s: %w", d, err)
	}
	// A new upload must fit the quota and the free-space floor before a
	// byte of it is written (one being resumed, or a blob stored already,
	// takes nothing new: checked again below).
	if fresh, err := s.needsSpace(ctx, d, size); err != nil {
		return Upload{}, fmt.Errorf("begin upload of %s: %w", d, err)
	} else if fresh {
		if err := s.reserve(ctx, size); err != nil {
			return Upload{}, fmt.Errorf("begin upload of %s: %w", d, err)
		}
	}
	id, err := newUploadID()
	if err != nil {
		return Upload{}, fmt.Errorf("begin upload of %s: %w", d, err)
	}
	// The file exists before its record, so a recorded upload always has one.
	if err := createEmpty(s.uploadPath(id)); err != nil {
		return Upload{}, fmt.Errorf("begin upload of %s: %w", d, err)
	}
	keepFile := false
	defer func() {
		if !keepFile {
			os.Remove(s.uploadPath(id))
		}
	}()
	var out Upload
	resumed := false
	err = s.update(ctx, func(tx *bolt.Tx) error {
		now := s.now()
		blobs := tx.Bucket(bucketBlobs)
		var b blobRec
		ok, err := getJSON(blobs, []byte(d.Hex()), &b)
		if err != nil {
			return err
		}
		if ok && !b.Corrupt {
			if b.Size != size {
				return invalidf("size %d, but the stored blob has %d bytes", size, b.Size)
			}
			b.KeepUntil = later(b.KeepUntil, now.Add(s.opts.blobGrace))
			out = Upload{Digest: d, Size: size, Offset: size, State: UploadComplete, CreateTime: b.CreateTime}
			return putJSON(blobs, []byte(d.Hex()), &b)
		}
		ups := tx.Bucket(bucketUploads)
		c := ups.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var r uploadRec
			if err := decodeJSON(k, v, &r); err != nil {
				return err
			}
			if r.Digest == d && r.Size == size && r.toUpload(s.opts.uploadTTL, now).State == UploadActive {
				r.UpdateTime = now
				out = r.toUpload(s.opts.uploadTTL, now)
				resumed = true
				return putJSON(ups, k, &r)
			}
		}
		r := uploadRec{ID: id, Digest: d, Size: size, State: UploadActive, CreateTime: now, UpdateTime: now}
		if r.HashState, err = marshalHash(sha256.New()); err != nil {
			return err
		}
		keepFile = true
		out = r.toUpload(s.opts.uploadTTL, now)
		return putJSON(ups, []byte(id), &r)
	})
	if err != nil {
		keepFile = false
		return Upload{}, fmt.Errorf("begin upload of %s: %w", d, err)
	}
	if resumed {
		// The partial bytes were written before a crash or a broken
		// connection: resume from them only if they are still what was
		// acknowledged, else start again from 0.
		if out, err = s.verifyPartial(ctx, out.ID); err != nil {
			return Upload{}, fmt.Errorf("begin upload of %s: %w", d, err)
		}
	}
	return out, nil
}

// verifyPartial hashes the acknowledged bytes of an active upload and
// compares them with the hash state recorded with them; on a mismatch (the
// file was changed or cut on disk) the upload restarts from offset 0.
func (s *Store) verifyPartial(ctx context.Context, id string) (Upload, error) {
	unlock := s.lockUpload(id)
	defer unlock()
	var r *uploadRec
	if err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		r, err = getUploadRec(tx, id)
		return err
	}); err != nil {
		return Upload{}, err
	}
	if u := r.toUpload(s.opts.uploadTTL, s.now()); u.State != UploadActive {
		return u, nil // completed (or expired) by another client meanwhile
	}
	if r.Offset > 0 {
		h := sha256.New()
		n, err := copyFile(ctx, h, s.uploadPath(id), r.Offset)
		var state []byte
		if err == nil && n == r.Offset {
			state, err = marshalHash(h)
		}
		if err != nil || n != r.Offset || !bytes.Equal(state, r.HashState) {
			if err := s.resetUpload(ctx, r); err != nil {
				return Upload{}, fmt.Errorf("upload %s: drop corrupt partial bytes: %w", id, err)
			}
		}
	}
	return r.toUpload(s.opts.uploadTTL, s.now()), nil
}

// UploadStatus returns an upload's state and the offset to resume from.
func (s *Store) UploadStatus(ctx context.Context, id string) (Upload, error) {
	var out Upload
	err := s.view(ctx, func(tx *bolt.Tx) error {
		r, err := getUploadRec(tx, id)
		if err != nil {
			return err
		}
		out = r.toUpload(s.opts.uploadTTL, s.now())
		return nil
	})
	if err != nil {
		return Upload{}, fmt.Errorf("upload status: %w", err)
	}
	return out, nil
}

// WriteChunk appends data to an active upload at offset, which must equal
// the upload's offset (an *OffsetError carrying it otherwise), and returns
// the new offset once the bytes are durable. Bytes past the announced size
// are ErrInvalid.
func (s *Store) WriteChunk(ctx context.Context, id string, offset int64, data []byte) (int64, error) {
	if err := checkUploadID(id); err != nil {
		return 0, fmt.Errorf("write chunk: %w", err)
	}
	unlock := s.lockUpload(id)
	defer unlock()
	r, err := s.activeUpload(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("write chunk: %w", err)
	}
	if offset != r.Offset {
		return r.Offset, &OffsetError{UploadID: id, Got: offset, Offset: r.Offset}
	}
	if int64(len(data)) > r.Size-offset {
		return r.Offset, fmt.Errorf("write chunk: %w", invalidf("upload %s: %d bytes at offset %d pass the announced size %d", id, len(data), offset, r.Size))
	}
	if len(data) == 0 {
		return r.Offset, nil
	}
	if err := s.checkFree(int64(len(data))); err != nil {
		return r.Offset, fmt.Errorf("write chunk: %w", err)
	}
	h, err := unmarshalHash(r.HashState)
	if err != nil {
		return r.Offset, fmt.Errorf("write chunk: upload %s: %w", id, err)
	}
	if err := s.appendAt(r, data); err != nil {
		return r.Offset, fmt.Errorf("write chunk: %w", err)
	}
	h.Write(data)
	if r.HashState, err = marshalHash(h); err != nil {
		return r.Offset, fmt.Errorf("write chunk: %w", err)
	}
	r.Offset += int64(len(data))
	r.UpdateTime = s.now()
	if err := s.update(ctx, func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketUploads), []byte(id), r)
	}); err != nil {
		// Unrecorded bytes are cut off by the next write.
		return r.Offset - int64(len(data)), fmt.Errorf("write chunk: %w", err)
	}
	return r.Offset, nil
}

// appendAt writes data at r.Offset of the upload's file and fsyncs it,
// first cutting off bytes that were written but never recorded.
func (s *Store) appendAt(r *uploadRec, data []byte) error {
	f, err := os.OpenFile(s.uploadPath(r.ID), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("upload %s: %w", r.ID, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("upload %s: %w", r.ID, err)
	}
	if fi.Size() < r.Offset {
		return fmt.Errorf("upload %s: file has %d bytes, record says %d", r.ID, fi.Size(), r.Offset)
	}
	if fi.Size() > r.Offset {
		if err := f.Truncate(r.Offset); err != nil {
			return fmt.Errorf("upload %s: %w", r.ID, err)
		}
	}
	if _, err := f.WriteAt(data, r.Offset); err != nil {
		return fmt.Errorf("upload %s: %w", r.ID, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("upload %s: %w", r.ID, err)
	}
	return f.Close()
}

// CommitUpload verifies a fully received upload against its sha256 and
// stores the blob. On a mismatch it returns ErrDigestMismatch and the upload
// restarts from offset 0 (its bytes are dropped). Committing a completed
// upload again returns the blob.
func (s *Store) CommitUpload(ctx context.Context, id string) (BlobInfo, error) {
	if err := checkUploadID(id); err != nil {
		return BlobInfo{}, fmt.Errorf("commit upload: %w", err)
	}
	unlock := s.lockUpload(id)
	defer unlock()
	var r *uploadRec
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		r, err = getUploadRec(tx, id)
		return err
	})
	if err != nil {
		return BlobInfo{}, fmt.Errorf("commit upload: %w", err)
	}
	if r.State == UploadComplete {
		return s.StatBlob(ctx, r.Digest)
	}
	if r.toUpload(s.opts.uploadTTL, s.now()).State == UploadExpired {
		return BlobInfo{}, fmt.Errorf("commit upload: %w", preconditionf("upload %s expired", id))
	}
	if r.Offset != r.Size {
		return BlobInfo{}, fmt.Errorf("commit upload: %w", preconditionf("upload %s has %d of %d bytes", id, r.Offset, r.Size))
	}
	// The bytes on disk are hashed, not the state saved while they
	// arrived: they may have changed since (a crash, a disk, a hand).
	got, err := hashFile(ctx, s.uploadPath(id), r.Size)
	if err != nil {
		return BlobInfo{}, fmt.Errorf("commit upload %s: %w", id, err)
	}
	if got != r.Digest.Hex() {
		if err := s.resetUpload(ctx, r); err != nil {
			return BlobInfo{}, fmt.Errorf("commit upload %s: reset after digest mismatch: %w", id, err)
		}
		// The client's bytes (or its announced digest) are wrong:
		// INVALID_ARGUMENT, as the API documents.
		return BlobInfo{}, fmt.Errorf("commit upload %s: %d bytes hash to sha256:%s, want %s (upload restarts from 0): %w: %w",
			id, r.Size, got, r.Digest, ErrDigestMismatch, ErrInvalid)
	}
	info, err := s.storeBlob(ctx, s.uploadPath(id), r.Digest, r.Size, func(tx *bolt.Tx) error {
		r.State = UploadComplete
		r.HashState = nil
		r.UpdateTime = s.now()
		return putJSON(tx.Bucket(bucketUploads), []byte(id), r)
	})
	if err != nil {
		return BlobInfo{}, fmt.Errorf("commit upload %s: %w", id, err)
	}
	return info, nil
}

// storeBlob moves a verified, fsynced file into place as blob d and records
// it, running also(tx) in the same transaction. When the blob is stored
// already the file is removed instead, unless the stored one is corrupt:
// then the new file replaces it (a re-push repairs a blob).
func (s *Store) storeBlob(ctx context.Context, tmp string, d Digest, size int64, also func(*bolt.Tx) error) (BlobInfo, error) {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	var info BlobInfo
	exists := false
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var b blobRec
		ok, err := getJSON(tx.Bucket(bucketBlobs), []byte(d.Hex()), &b)
		exists = ok && !b.Corrupt // a corrupt file is replaced
		return err
	})
	if err != nil {
		return BlobInfo{}, err
	}
	if !exists {
		// A fresh mtime keeps GC's sweep of unrecorded files off it.
		now := s.opts.clock()
		if err := os.Chtimes(tmp, now, now); err != nil {
			return BlobInfo{}, err
		}
		if err := renameSync(tmp, s.blobPath(d)); err != nil {
			return BlobInfo{}, fmt.Errorf("store blob %s: %w", d, err)
		}
	}
	err = s.update(ctx, func(tx *bolt.Tx) error {
		now := s.now()
		blobs := tx.Bucket(bucketBlobs)
		var b blobRec
		ok, err := getJSON(blobs, []byte(d.Hex()), &b)
		if err != nil {
			return err
		}
		if !ok {
			b = blobRec{Size: size, CreateTime: now}
		}
		if !exists { // the file just put in place was hashed on its way
			b.Verified, b.Corrupt = true, false
		}
		b.KeepUntil = later(b.KeepUntil, now.Add(s.opts.blobGrace))
		if err := putJSON(blobs, []byte(d.Hex()), &b); err != nil {
			return err
		}
		info = BlobInfo{Digest: d, Size: b.Size, RefCount: b.RefCount, CreateTime: b.CreateTime}
		if also != nil {
			return also(tx)
		}
		return nil
	})
	if err != nil {
		return BlobInfo{}, err
	}
	if exists {
		os.Remove(tmp) // a leftover is swept by GC
	}
	return info, nil
}

// resetUpload drops an upload's bytes so that it restarts from offset 0.
func (s *Store) resetUpload(ctx context.Context, r *uploadRec) error {
	if err := os.Truncate(s.uploadPath(r.ID), 0); err != nil {
		return err
	}
	var err error
	if r.HashState, err = marshalHash(sha256.New()); err != nil {
		return err
	}
	r.Offset = 0
	r.UpdateTime = s.now()
	return s.update(ctx, func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketUploads), []byte(r.ID), r)
	})
}

// activeUpload loads an upload that can take bytes.
func (s *Store) activeUpload(ctx context.Context, id string) (*uploadRec, error) {
	var r *uploadRec
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		r, err = getUploadRec(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	switch r.toUpload(s.opts.uploadTTL, s.now()).State {
	case UploadComplete:
		return nil, preconditionf("upload %s is complete", id)
	case UploadExpired:
		return nil, preconditionf("upload %s expired (start a new one)", id)
	}
	return r, nil
}

func getUploadRec(tx *bolt.Tx, id string) (*uploadRec, error) {
	if err := checkUploadID(id); err != nil {
		return nil, err
	}
	var r uploadRec
	ok, err := getJSON(tx.Bucket(bucketUploads), []byte(id), &r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFoundf("upload %s", id)
	}
	return &r, nil
}

const uploadIDLen = 32

func newUploadID() (string, error) {
	var b [uploadIDLen / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("upload id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// checkUploadID keeps IDs to what newUploadID makes: they name files.
func checkUploadID(id string) error {
	if len(id) != uploadIDLen || bytes.ContainsFunc([]byte(id), func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f')
	}) {
		return invalidf("upload id %q: want %d lower-case hex characters", id, uploadIDLen)
	}
	return nil
}

func createEmpty(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return syncDir(dirOf(path))
}

func marshalHash(h hash.Hash) ([]byte, error) {
	m, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return nil, errors.New("sha256 state cannot be saved")
	}
	return m.MarshalBinary()
}

func unmarshalHash(state []byte) (hash.Hash, error) {
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return nil, fmt.Errorf("corrupt sha256 state: %w", err)
	}
	return h, nil
}

// needsSpace reports whether announcing blob d of size bytes starts a new
// upload (the blob is not stored, nor being uploaded).
func (s *Store) needsSpace(ctx context.Context, d Digest, size int64) (bool, error) {
	fresh := true
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var b blobRec
		ok, err := getJSON(tx.Bucket(bucketBlobs), []byte(d.Hex()), &b)
		if err != nil || (ok && !b.Corrupt) {
			fresh = false
			return err
		}
		now := s.now()
		return tx.Bucket(bucketUploads).ForEach(func(k, v []byte) error {
			var r uploadRec
			if err := decodeJSON(k, v, &r); err != nil {
				return err
			}
			if r.Digest == d && r.Size == size && r.toUpload(s.opts.uploadTTL, now).State == UploadActive {
				fresh = false
			}
			return nil
		})
	})
	return fresh, err
}
