package registry

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bitnet-mesh/bitnet-mesh/shared/auth"
)

// Buckets of the API keys (see package auth): the registry is the mesh's
// key store; services read it with SyncKeys.
var (
	bucketKeys     = []byte("keys")      // key ID -> keyRec
	bucketKeyNames = []byte("key_names") // name -> key ID
	bucketKeyMeta  = []byte("key_meta")  // "rev" -> be64 revision of the key table
	keyRevKey      = []byte("rev")
)

// MaxKeys bounds the number of API keys (each service holds them all in
// memory).
const MaxKeys = 10000

// keyRec is a stored key: no secret, only its SHA-256.
type keyRec struct {
	ID         string      `json:"id"`
	Name       string      `json:"name"`
	Scopes     auth.Scopes `json:"scopes"`
	SHA256     string      `json:"sha256"`
	CreateTime time.Time   `json:"create_time"`
	ExpireTime time.Time   `json:"expire_time,omitzero"`
	Limits     auth.Limits `json:"limits,omitzero"`
}

func (r keyRec) key() (auth.Key, error) {
	k := auth.Key{ID: r.ID, Name: r.Name, Scopes: r.Scopes, CreateTime: r.CreateTime, ExpireTime: r.ExpireTime, Limits: r.Limits}
	h, err := hex.DecodeString(r.SHA256)
	if err != nil || len(h) != len(k.Hash) {
		return auth.Key{}, fmt.Errorf("corrupt key record %s: bad sha256", r.ID)
	}
	copy(k.Hash[:], h)
	return k, nil
}

// KeySpec describes a new key.
type KeySpec struct {
	Name   string
	Scopes auth.Scopes
	// TTL is the key's lifetime (0: it does not expire).
	TTL    time.Duration
	Limits auth.Limits
	// Token, when set, is stored instead of a new random one (an operator's
	// bootstrap admin key, BITNET_ADMIN_KEY).
	Token *auth.Token
}

func keyBuckets(tx *bolt.Tx) (keys, names, meta *bolt.Bucket, err error) {
	for _, b := range []struct {
		name []byte
		out  **bolt.Bucket
	}{{bucketKeys, &keys}, {bucketKeyNames, &names}, {bucketKeyMeta, &meta}} {
		if tx.Writable() {
			if *b.out, err = tx.CreateBucketIfNotExists(b.name); err != nil {
				return nil, nil, nil, err
			}
		} else {
			*b.out = tx.Bucket(b.name)
		}
	}
	return keys, names, meta, nil
}

func keyRevision(meta *bolt.Bucket) uint64 {
	if meta == nil {
		return 0
	}
	if v := meta.Get(keyRevKey); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func bumpKeyRevision(meta *bolt.Bucket) error {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], keyRevision(meta)+1)
	return meta.Put(keyRevKey, v[:])
}

// CreateKey stores a new key and returns it with its token (bnk_...), the
// only time the secret exists outside the caller.
func (s *Store) CreateKey(ctx context.Context, spec KeySpec) (auth.Key, auth.Token, error) {
	if err := auth.ValidateKeyName(spec.Name); err != nil {
		return auth.Key{}, auth.Token{}, invalidf("create key: %v", err)
	}
	if len(spec.Scopes) == 0 {
		return auth.Key{}, auth.Token{}, invalidf("create key %q: no scopes", spec.Name)
	}
	for _, sc := range spec.Scopes {
		if _, err := auth.ParseScope(string(sc)); err != nil {
			return auth.Key{}, auth.Token{}, invalidf("create key %q: %v", spec.Name, err)
		}
	}
	if spec.TTL < 0 {
		return auth.Key{}, auth.Token{}, invalidf("create key %q: negative ttl %v", spec.Name, spec.TTL)
	}
	if err := spec.Limits.Validate(); err != nil {
		return auth.Key{}, auth.Token{}, invalidf("create key %q: %v", spec.Name, err)
	}
	var tok auth.Token
	if spec.Token != nil {
		tok = *spec.Token
	} else {
		var err error
		if tok, err = auth.NewToken(); err != nil {
			return auth.Key{}, auth.Token{}, err
		}
	}
	now := s.now()
	h := tok.Hash()
	rec := keyRec{ID: tok.ID, Name: spec.Name, Scopes: spec.Scopes, SHA256: hex.EncodeToString(h[:]), CreateTime: now, Limits: spec.Limits}
	if spec.TTL > 0 {
		rec.ExpireTime = now.Add(spec.TTL)
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		keys, names, meta, err := keyBuckets(tx)
		if err != nil {
			return err
		}
		if names.Get([]byte(spec.Name)) != nil {
			return fmt.Errorf("key %q: %w", spec.Name, ErrAlreadyExists)
		}
		if keys.Get([]byte(rec.ID)) != nil {
			return fmt.Errorf("key ID %s: %w", rec.ID, ErrAlreadyExists)
		}
		if keys.Stats().KeyN >= MaxKeys {
			return preconditionf("create key %q: the registry holds %d keys, the limit; revoke some", spec.Name, MaxKeys)
		}
		if err := putJSON(keys, []byte(rec.ID), rec); err != nil {
			return err
		}
		if err := names.Put([]byte(spec.Name), []byte(rec.ID)); err != nil {
			return err
		}
		return bumpKeyRevision(meta)
	})
	if err != nil {
		return auth.Key{}, auth.Token{}, fmt.Errorf("create key: %w", err)
	}
	k, err := rec.key()
	return k, tok, err
}

// ListKeys returns every key (expired ones included) by name.
func (s *Store) ListKeys(ctx context.Context) ([]auth.Key, error) {
	_, keys, err := s.readKeys(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(keys, func(a, b auth.Key) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return keys, nil
}

func (s *Store) readKeys(ctx context.Context) (uint64, []auth.Key, error) {
	var rev uint64
	var out []auth.Key
	err := s.view(ctx, func(tx *bolt.Tx) error {
		keys, _, meta, _ := keyBuckets(tx)
		rev = keyRevision(meta)
		if keys == nil {
			return nil
		}
		return keys.ForEach(func(_, v []byte) error {
			var rec keyRec
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			k, err := rec.key()
			if err != nil {
				return err
			}
			out = append(out, k)
			return nil
		})
	})
	if err != nil {
		return 0, nil, fmt.Errorf("read keys: %w", err)
	}
	return rev, out, nil
}

// RevokeKey deletes the key named name.
func (s *Store) RevokeKey(ctx context.Context, name string) (auth.Key, error) {
	var rec keyRec
	err := s.update(ctx, func(tx *bolt.Tx) error {
		keys, names, meta, err := keyBuckets(tx)
		if err != nil {
			return err
		}
		id := names.Get([]byte(name))
		if id == nil {
			return notFoundf("key %q", name)
		}
		id = slices.Clone(id)
		if ok, err := getJSON(keys, id, &rec); err != nil {
			return err
		} else if !ok {
			return notFoundf("key %q (ID %s)", name, id)
		}
		if err := keys.Delete(id); err != nil {
			return err
		}
		if err := names.Delete([]byte(name)); err != nil {
			return err
		}
		return bumpKeyRevision(meta)
	})
	if err != nil {
		return auth.Key{}, fmt.Errorf("revoke key: %w", err)
	}
	return rec.key()
}

// SyncKeys implements auth.Source over the store (services in the
// registry's process read it directly).
func (s *Store) SyncKeys(ctx context.Context, since uint64) (uint64, []auth.Key, bool, error) {
	var rev uint64
	err := s.view(ctx, func(tx *bolt.Tx) error {
		_, _, meta, _ := keyBuckets(tx)
		rev = keyRevision(meta)
		return nil
	})
	if err != nil {
		return 0, nil, false, fmt.Errorf("sync keys: %w", err)
	}
	if since != 0 && since == rev {
		return rev, nil, false, nil
	}
	rev, keys, err := s.readKeys(ctx)
	return rev, keys, true, err
}

// KeyCount returns how many keys exist.
func (s *Store) KeyCount(ctx context.Context) (int, error) {
	n := 0
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketKeys); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	return n, err
}

var _ auth.Source = (*Store)(nil)
