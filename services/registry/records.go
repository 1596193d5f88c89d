package registry

import (
	"encoding/binary"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Database records (JSON). Model aliases live in the model record so that
// moving one is a single put; version counts come from the model's version
// bucket.
type modelRec struct {
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Aliases     map[string]uint32 `json:"aliases,omitempty"`
	CreateTime  time.Time         `json:"create_time"`
	UpdateTime  time.Time         `json:"update_time"`
}

type versionRec struct {
	Version     uint32    `json:"version"`
	Description string    `json:"description,omitempty"`
	Files       []BlobRef `json:"files"`
	Metadata    Metadata  `json:"metadata"`
	CreateTime  time.Time `json:"create_time"`
}

type blobRec struct {
	Size       int64     `json:"size"`
	RefCount   uint32    `json:"ref_count"`
	CreateTime time.Time `json:"create_time"`
	// KeepUntil protects an unreferenced blob from GC until then.
	KeepUntil time.Time `json:"keep_until"`
	// Verified: the file was hashed from disk when it was stored (or by
	// a later check) and matched. Blobs stored by older versions lack it
	// and are hashed once before an upload of the same blob is skipped.
	Verified bool `json:"verified,omitempty"`
	// Corrupt: the file no longer hashes to the blob's digest. Reads fail
	// (ErrDigestMismatch) and the next upload of the blob replaces it.
	Corrupt bool `json:"corrupt,omitempty"`
}

type uploadRec struct {
	ID         string      `json:"id"`
	Digest     Digest      `json:"digest"`
	Size       int64       `json:"size"`
	Offset     int64       `json:"offset"`
	HashState  []byte      `json:"hash_state,omitempty"` // sha256 of bytes [0, Offset), marshaled
	State      UploadState `json:"state"`
	CreateTime time.Time   `json:"create_time"`
	UpdateTime time.Time   `json:"update_time"`
}

func versionKey(v uint32) []byte {
	var k [4]byte
	binary.BigEndian.PutUint32(k[:], v)
	return k[:]
}

func (s *Store) toModel(tx *bolt.Tx, r *modelRec) Model {
	m := Model{
		Name:        r.Name,
		Description: r.Description,
		Labels:      r.Labels,
		Aliases:     r.Aliases,
		CreateTime:  r.CreateTime,
		UpdateTime:  r.UpdateTime,
	}
	if vb := tx.Bucket(bucketVersions).Bucket([]byte(r.Name)); vb != nil {
		c := vb.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			m.VersionCount++
		}
		if k, _ := c.Last(); k != nil {
			m.LatestVersion = binary.BigEndian.Uint32(k)
		}
	}
	if m.Aliases == nil {
		m.Aliases = map[string]uint32{}
	}
	return m
}

func toVersion(name string, m *modelRec, r *versionRec) Version {
	v := Version{
		Ref:         Ref{Name: name, Version: r.Version},
		Description: r.Description,
		Files:       r.Files,
		Metadata:    r.Metadata,
		CreateTime:  r.CreateTime,
	}
	for _, f := range r.Files {
		v.SizeBytes += f.Size
	}
	for a, n := range m.Aliases {
		if n == r.Version {
			v.Aliases = append(v.Aliases, a)
		}
	}
	sort.Strings(v.Aliases)
	return v
}

func (r *uploadRec) toUpload(ttl time.Duration, now time.Time) Upload {
	u := Upload{
		ID:         r.ID,
		Digest:     r.Digest,
		Size:       r.Size,
		Offset:     r.Offset,
		State:      r.State,
		CreateTime: r.CreateTime,
		ExpireTime: r.UpdateTime.Add(ttl),
	}
	if u.State == UploadActive && !now.Before(u.ExpireTime) {
		u.State = UploadExpired
	}
	return u
}
