package registry

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// SetAlias points an alias at version v of a model, creating or moving it,
// and returns the model and the version the alias pointed at before (0 when
// it is new).
func (s *Store) SetAlias(ctx context.Context, name, alias string, v uint32) (Model, uint32, error) {
	if err := ValidateName(name); err != nil {
		return Model{}, 0, err
	}
	if err := ValidateAlias(alias); err != nil {
		return Model{}, 0, err
	}
	var out Model
	var prev uint32
	err := s.update(ctx, func(tx *bolt.Tx) error {
		m, err := getModelRec(tx, name)
		if err != nil {
			return err
		}
		if _, err := getVersionRec(tx, name, v); err != nil {
			return err
		}
		prev = m.Aliases[alias]
		if m.Aliases == nil {
			m.Aliases = map[string]uint32{}
		}
		m.Aliases[alias] = v
		m.UpdateTime = s.now()
		if err := putJSON(tx.Bucket(bucketModels), []byte(name), m); err != nil {
			return err
		}
		out = s.toModel(tx, m)
		return nil
	})
	if err != nil {
		return Model{}, 0, fmt.Errorf("set alias %s:%s: %w", name, alias, err)
	}
	return out, prev, nil
}

// DeleteAlias deletes an alias and returns the version it pointed at.
func (s *Store) DeleteAlias(ctx context.Context, name, alias string) (uint32, error) {
	if err := ValidateName(name); err != nil {
		return 0, err
	}
	if err := ValidateAlias(alias); err != nil {
		return 0, err
	}
	var prev uint32
	err := s.update(ctx, func(tx *bolt.Tx) error {
		m, err := getModelRec(tx, name)
		if err != nil {
			return err
		}
		v, ok := m.Aliases[alias]
		if !ok {
			return notFoundf("model %q alias %q", name, alias)
		}
		prev = v
		delete(m.Aliases, alias)
		m.UpdateTime = s.now()
		return putJSON(tx.Bucket(bucketModels), []byte(name), m)
	})
	if err != nil {
		return 0, fmt.Errorf("delete alias %s:%s: %w", name, alias, err)
	}
	return prev, nil
}
