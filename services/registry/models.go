package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"

	bolt "go.etcd.io/bbolt"
)

// CreateModel creates a model with no versions. ErrAlreadyExists when the
// name is taken.
func (s *Store) CreateModel(ctx context.Context, name string, spec ModelSpec) (Model, error) {
	if err := validateModelSpec(name, spec); err != nil {
		return Model{}, err
	}
	var m Model
	err := s.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketModels).Get([]byte(name)) != nil {
			return fmt.Errorf("model %q: %w", name, ErrAlreadyExists)
		}
		r, err := s.putNewModel(tx, name, spec)
		if err != nil {
			return err
		}
		m = s.toModel(tx, r)
		return nil
	})
	if err != nil {
		return Model{}, fmt.Errorf("create model: %w", err)
	}
	return m, nil
}

func validateModelSpec(name string, spec ModelSpec) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := validateText("model description", spec.Description, MaxTextLen); err != nil {
		return err
	}
	return validateLabels("model "+name, spec.Labels)
}

func (s *Store) putNewModel(tx *bolt.Tx, name string, spec ModelSpec) (*modelRec, error) {
	now := s.now()
	r := &modelRec{
		Name:        name,
		Description: spec.Description,
		Labels:      maps.Clone(spec.Labels),
		CreateTime:  now,
		UpdateTime:  now,
	}
	return r, putJSON(tx.Bucket(bucketModels), []byte(name), r)
}

// getModelRec loads a model record; ErrNotFound when absent.
func getModelRec(tx *bolt.Tx, name string) (*modelRec, error) {
	var r modelRec
	ok, err := getJSON(tx.Bucket(bucketModels), []byte(name), &r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFoundf("model %q", name)
	}
	return &r, nil
}

// GetModel returns a model with its aliases and version summary.
func (s *Store) GetModel(ctx context.Context, name string) (Model, error) {
	if err := ValidateName(name); err != nil {
		return Model{}, err
	}
	var m Model
	err := s.view(ctx, func(tx *bolt.Tx) error {
		r, err := getModelRec(tx, name)
		if err != nil {
			return err
		}
		m = s.toModel(tx, r)
		return nil
	})
	if err != nil {
		return Model{}, fmt.Errorf("get model: %w", err)
	}
	return m, nil
}

// ListModels lists models in name order, a page at a time; the returned
// token is empty on the last page.
func (s *Store) ListModels(ctx context.Context, o ListOptions) ([]Model, string, error) {
	size, err := pageSize(o.PageSize)
	if err != nil {
		return nil, "", fmt.Errorf("list models: %w", err)
	}
	after, err := decodeToken(o.PageToken, tokenModels, func(k []byte) bool { return ValidateName(string(k)) == nil })
	if err != nil {
		return nil, "", fmt.Errorf("list models: %w", err)
	}
	prefix := []byte(o.Prefix)
	start := prefix
	if after != nil && bytes.Compare(after, prefix) >= 0 {
		start = after
	}
	var out []Model
	next := ""
	err = s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketModels).Cursor()
		for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if after != nil && bytes.Equal(k, after) {
				continue
			}
			if len(out) == size {
				next = encodeToken(tokenModels, []byte(out[len(out)-1].Name))
				break
			}
			var r modelRec
			if err := decodeJSON(k, v, &r); err != nil {
				return err
			}
			out = append(out, s.toModel(tx, &r))
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list models: %w", err)
	}
	return out, next, nil
}

// DeleteModel deletes a model with all its versions and aliases, then
// collects the blobs left unreferenced. It returns the number of versions
// deleted. The model's version numbers are not reused if it is created again.
func (s *Store) DeleteModel(ctx context.Context, name string) (int, error) {
	if err := ValidateName(name); err != nil {
		return 0, err
	}
	n := 0
	err := s.update(ctx, func(tx *bolt.Tx) error {
		if _, err := getModelRec(tx, name); err != nil {
			return err
		}
		vs := tx.Bucket(bucketVersions)
		if vb := vs.Bucket([]byte(name)); vb != nil {
			err := vb.ForEach(func(k, v []byte) error {
				var r versionRec
				if err := decodeJSON(k, v, &r); err != nil {
					return err
				}
				n++
				return s.addRefs(tx, r.Files, -1)
			})
			if err != nil {
				return err
			}
			if err := vs.DeleteBucket([]byte(name)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketModels).Delete([]byte(name))
	})
	if err != nil {
		return 0, fmt.Errorf("delete model: %w", err)
	}
	// The model is gone either way; a failed collection is retried by GC.
	_, _ = s.collect(ctx, nil)
	return n, nil
}

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

func pageSize(n int) (int, error) {
	switch {
	case n == 0:
		return defaultPageSize, nil
	case n < 0 || n > maxPageSize:
		return 0, invalidf("page size %d: want 0 to %d", n, maxPageSize)
	}
	return n, nil
}

// Page tokens carry what the page ended on, tagged with the list they
// belong to, so that a token from elsewhere (or "garbage", which happens
// to be valid base64) is INVALID_ARGUMENT rather than an empty page.
const (
	tokenModels   = "m:" // a model name
	tokenVersions = "v:" // a version number
)

func encodeToken(kind string, key []byte) string {
	return base64.RawURLEncoding.EncodeToString(append([]byte(kind), key...))
}

// decodeToken returns the key of a token of kind ("" for none); valid
// checks the key.
func decodeToken(t, kind string, valid func([]byte) bool) ([]byte, error) {
	if t == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil || !bytes.HasPrefix(b, []byte(kind)) || !valid(b[len(kind):]) {
		return nil, invalidf("page token %q is not one this list returned", t)
	}
	return b[len(kind):], nil
}

func decodeJSON(k, v []byte, dst any) error {
	if err := json.Unmarshal(v, dst); err != nil {
		return fmt.Errorf("corrupt record %q: %w", k, err)
	}
	return nil
}
