package registry

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// CreateVersion creates the next version of a model (numbers start at 1 and
// are never reused) from blobs already stored, and points spec.Aliases at it
// in the same transaction. ErrNotFound when the model does not exist and
// spec.CreateModel is false; ErrFailedPrecondition when a blob is missing.
// File sizes left 0 are filled in from the blobs; given ones must match.
func (s *Store) CreateVersion(ctx context.Context, name string, spec VersionSpec) (Version, error) {
	rec, err := validateVersionSpec(name, spec)
	if err != nil {
		return Version{}, fmt.Errorf("create version of %q: %w", name, err)
	}
	// The files are checked at push, not at first use: a version no node
	// can load is refused here, naming the problem.
	if err := s.validateFiles(ctx, VersionSpec{Files: rec.Files, Metadata: rec.Metadata}); err != nil {
		return Version{}, fmt.Errorf("create version of %q: %w", name, err)
	}
	var out Version
	err = s.update(ctx, func(tx *bolt.Tx) error {
		m, err := getModelRec(tx, name)
		if errors.Is(err, ErrNotFound) && spec.CreateModel {
			m, err = s.putNewModel(tx, name, ModelSpec{})
		}
		if err != nil {
			return err
		}
		blobs := tx.Bucket(bucketBlobs)
		for i := range rec.Files {
			f := &rec.Files[i]
			var b blobRec
			ok, err := getJSON(blobs, []byte(f.Digest.Hex()), &b)
			if err != nil {
				return err
			}
			if !ok {
				return preconditionf("file %q: blob %s is not stored (upload it first)", f.Path, f.Digest)
			}
			if f.Size != 0 && f.Size != b.Size {
				return invalidf("file %q: size %d, but blob %s has %d bytes", f.Path, f.Size, f.Digest, b.Size)
			}
			f.Size = b.Size
		}
		seq := tx.Bucket(bucketSeq)
		var last uint32
		if k := seq.Get([]byte(name)); len(k) == 4 {
			last = binary.BigEndian.Uint32(k)
		}
		if last == 1<<32-1 {
			return preconditionf("model %q: no version numbers left", name)
		}
		rec.Version = last + 1
		rec.CreateTime = s.now()
		if err := seq.Put([]byte(name), versionKey(rec.Version)); err != nil {
			return err
		}
		vb, err := tx.Bucket(bucketVersions).CreateBucketIfNotExists([]byte(name))
		if err != nil {
			return err
		}
		if err := putJSON(vb, versionKey(rec.Version), rec); err != nil {
			return err
		}
		if err := s.addRefs(tx, rec.Files, +1); err != nil {
			return err
		}
		for _, a := range spec.Aliases {
			if m.Aliases == nil {
				m.Aliases = map[string]uint32{}
			}
			m.Aliases[a] = rec.Version
		}
		m.UpdateTime = rec.CreateTime
		if err := putJSON(tx.Bucket(bucketModels), []byte(name), m); err != nil {
			return err
		}
		out = toVersion(name, m, rec)
		return nil
	})
	if err != nil {
		return Version{}, fmt.Errorf("create version of %q: %w", name, err)
	}
	return out, nil
}

// validateVersionSpec checks spec and returns a record built from a deep
// copy of it, with digests in canonical form.
func validateVersionSpec(name string, spec VersionSpec) (*versionRec, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	// A JSON round trip copies every slice and map away from the caller.
	var rec versionRec
	data, err := json.Marshal(versionRec{Description: spec.Description, Files: spec.Files, Metadata: spec.Metadata})
	if err == nil {
		err = json.Unmarshal(data, &rec)
	}
	if err != nil {
		return nil, invalidf("version spec: %v", err)
	}
	if err := validateText("description", rec.Description, MaxTextLen); err != nil {
		return nil, err
	}
	if len(rec.Files) == 0 || len(rec.Files) > MaxFiles {
		return nil, invalidf("%d files: want 1 to %d", len(rec.Files), MaxFiles)
	}
	paths := make(map[string]bool, len(rec.Files))
	for i := range rec.Files {
		f := &rec.Files[i]
		if err := ValidatePath(f.Path); err != nil {
			return nil, err
		}
		if paths[f.Path] {
			return nil, invalidf("file path %q: given twice", f.Path)
		}
		paths[f.Path] = true
		d, err := ParseDigest(string(f.Digest))
		if err != nil {
			return nil, fmt.Errorf("file %q: %w", f.Path, err)
		}
		f.Digest = d
		if f.Size < 0 {
			return nil, invalidf("file %q: size %d", f.Path, f.Size)
		}
		if err := validateText("file "+f.Path+" media type", f.MediaType, 255); err != nil {
			return nil, err
		}
	}
	if err := validateMetadata(&rec.Metadata); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, a := range spec.Aliases {
		if err := ValidateAlias(a); err != nil {
			return nil, err
		}
		if seen[a] {
			return nil, invalidf("alias %q: given twice", a)
		}
		seen[a] = true
	}
	return &rec, nil
}

func validateMetadata(m *Metadata) error {
	switch m.Format {
	case FormatGGUF, FormatHFSafetensors, FormatHFPacked:
	default:
		return invalidf("format %q: want %s, %s or %s", m.Format, FormatGGUF, FormatHFSafetensors, FormatHFPacked)
	}
	switch m.QuantType {
	case "", QuantF32, QuantF16, QuantBF16, QuantTQ20, QuantTQ10, QuantI2S:
	default:
		return invalidf("quant type %q: want one of F32, F16, BF16, TQ2_0, TQ1_0, I2_S", m.QuantType)
	}
	if err := validateText("architecture", m.Architecture, 128); err != nil {
		return err
	}
	for _, list := range [][]string{m.HardwareHints.PreferredKernels, m.HardwareHints.RequiredFeatures} {
		if len(list) > 32 {
			return invalidf("hardware hints: %d entries, at most 32", len(list))
		}
		for _, h := range list {
			if err := checkLabelKey(h); err != nil {
				return invalidf("hardware hint %q: %v", h, err)
			}
		}
	}
	l := &m.Lineage
	switch l.Source {
	case "", SourceUpload, SourceQuantizer, SourceTrainer:
	default:
		return invalidf("lineage source %q: want %s, %s or %s", l.Source, SourceUpload, SourceQuantizer, SourceTrainer)
	}
	if err := validateText("lineage job id", l.JobID, 128); err != nil {
		return err
	}
	if l.Parent != nil {
		if _, err := ParseRef(l.Parent.String()); err != nil {
			return fmt.Errorf("lineage parent: %w", err)
		}
	}
	if l.DatasetDigest != "" {
		d, err := ParseDigest(string(l.DatasetDigest))
		if err != nil {
			return fmt.Errorf("lineage dataset: %w", err)
		}
		l.DatasetDigest = d
	}
	if len(l.ConfigJSON) > MaxConfigJSONLen || (l.ConfigJSON != "" && !json.Valid([]byte(l.ConfigJSON))) {
		return invalidf("lineage config: want valid JSON of at most %d bytes", MaxConfigJSONLen)
	}
	if len(l.Metrics) > MaxLabels {
		return invalidf("lineage metrics: %d, at most %d", len(l.Metrics), MaxLabels)
	}
	for k := range l.Metrics {
		if err := checkLabelKey(k); err != nil {
			return invalidf("lineage metric %q: %v", k, err)
		}
	}
	return validateLabels("version", m.Labels)
}

// addRefs adds delta to the reference count of each distinct blob of files.
func (s *Store) addRefs(tx *bolt.Tx, files []BlobRef, delta int) error {
	blobs := tx.Bucket(bucketBlobs)
	seen := map[Digest]bool{}
	for _, f := range files {
		if seen[f.Digest] {
			continue
		}
		seen[f.Digest] = true
		key := []byte(f.Digest.Hex())
		var b blobRec
		ok, err := getJSON(blobs, key, &b)
		if err != nil {
			return err
		}
		if !ok {
			if delta < 0 {
				continue // already gone; nothing to release
			}
			return preconditionf("blob %s is not stored", f.Digest)
		}
		if n := int64(b.RefCount) + int64(delta); n < 0 {
			b.RefCount = 0
		} else {
			b.RefCount = uint32(n)
		}
		if err := putJSON(blobs, key, &b); err != nil {
			return err
		}
	}
	return nil
}

func getVersionRec(tx *bolt.Tx, name string, v uint32) (*versionRec, error) {
	vb := tx.Bucket(bucketVersions).Bucket([]byte(name))
	if vb == nil {
		return nil, notFoundf("model %q version %d", name, v)
	}
	var r versionRec
	ok, err := getJSON(vb, versionKey(v), &r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFoundf("model %q version %d", name, v)
	}
	return &r, nil
}

// GetVersion returns version v of a model.
func (s *Store) GetVersion(ctx context.Context, name string, v uint32) (Version, error) {
	if err := ValidateName(name); err != nil {
		return Version{}, err
	}
	var out Version
	err := s.view(ctx, func(tx *bolt.Tx) error {
		m, err := getModelRec(tx, name)
		if err != nil {
			return err
		}
		r, err := getVersionRec(tx, name, v)
		if err != nil {
			return err
		}
		out = toVersion(name, m, r)
		return nil
	})
	if err != nil {
		return Version{}, fmt.Errorf("get version: %w", err)
	}
	return out, nil
}

// ListVersions lists a model's versions newest first, a page at a time.
func (s *Store) ListVersions(ctx context.Context, name string, o ListOptions) ([]Version, string, error) {
	if err := ValidateName(name); err != nil {
		return nil, "", err
	}
	size, err := pageSize(o.PageSize)
	if err != nil {
		return nil, "", fmt.Errorf("list versions: %w", err)
	}
	before := uint64(1 << 32) // list versions below this
	if o.PageToken != "" {
		t, err := decodeToken(o.PageToken, tokenVersions, func(k []byte) bool { _, err := strconv.ParseUint(string(k), 10, 32); return err == nil })
		if err == nil {
			before, err = strconv.ParseUint(string(t), 10, 32)
		}
		if err != nil {
			return nil, "", fmt.Errorf("list versions: %w", invalidf("page token %q", o.PageToken))
		}
	}
	var out []Version
	next := ""
	err = s.view(ctx, func(tx *bolt.Tx) error {
		m, err := getModelRec(tx, name)
		if err != nil {
			return err
		}
		vb := tx.Bucket(bucketVersions).Bucket([]byte(name))
		if vb == nil {
			return nil
		}
		c := vb.Cursor()
		var k, v []byte
		if before > 1<<32-1 {
			k, v = c.Last()
		} else {
			// Seek lands on the first key >= before; step back below it.
			if k, _ = c.Seek(versionKey(uint32(before))); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
			for k != nil && uint64(binary.BigEndian.Uint32(k)) >= before {
				k, v = c.Prev()
			}
		}
		for ; k != nil; k, v = c.Prev() {
			if len(out) == size {
				next = encodeToken(tokenVersions, []byte(strconv.FormatUint(uint64(out[len(out)-1].Ref.Version), 10)))
				break
			}
			var r versionRec
			if err := decodeJSON(k, v, &r); err != nil {
				return err
			}
			out = append(out, toVersion(name, m, &r))
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list versions: %w", err)
	}
	return out, next, nil
}

// DeleteVersion deletes version v of a model. While aliases point at it,
// ErrFailedPrecondition unless force, which deletes them too (returned).
// Blobs left unreferenced are collected.
func (s *Store) DeleteVersion(ctx context.Context, name string, v uint32, force bool) ([]string, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	var deleted []string
	err := s.update(ctx, func(tx *bolt.Tx) error {
		m, err := getModelRec(tx, name)
		if err != nil {
			return err
		}
		r, err := getVersionRec(tx, name, v)
		if err != nil {
			return err
		}
		deleted = toVersion(name, m, r).Aliases
		if len(deleted) > 0 && !force {
			return preconditionf("model %q version %d: aliases %v point at it (move or delete them, or force)", name, v, deleted)
		}
		for _, a := range deleted {
			delete(m.Aliases, a)
		}
		if err := tx.Bucket(bucketVersions).Bucket([]byte(name)).Delete(versionKey(v)); err != nil {
			return err
		}
		if err := s.addRefs(tx, r.Files, -1); err != nil {
			return err
		}
		m.UpdateTime = s.now()
		return putJSON(tx.Bucket(bucketModels), []byte(name), m)
	})
	if err != nil {
		return nil, fmt.Errorf("delete version: %w", err)
	}
	_, _ = s.collect(ctx, nil)
	return deleted, nil
}

// Resolve returns the version a reference (`name`, `name@N`, `name:alias`)
// names: plain names resolve to the latest version. The returned version's
// Ref carries the alias when the reference named one.
func (s *Store) Resolve(ctx context.Context, ref string) (Version, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return Version{}, err
	}
	return s.ResolveRef(ctx, r)
}

// ResolveRef is Resolve for a parsed reference.
func (s *Store) ResolveRef(ctx context.Context, r Ref) (Version, error) {
	if _, err := ParseRef(r.String()); err != nil || (r.Version != 0 && r.Alias != "") {
		return Version{}, invalidf("reference %+v", r)
	}
	var out Version
	err := s.view(ctx, func(tx *bolt.Tx) error {
		m, err := getModelRec(tx, r.Name)
		if err != nil {
			return err
		}
		v := r.Version
		switch {
		case r.Alias != "":
			n, ok := m.Aliases[r.Alias]
			if !ok {
				return notFoundf("model %q alias %q", r.Name, r.Alias)
			}
			v = n
		case v == 0:
			vb := tx.Bucket(bucketVersions).Bucket([]byte(r.Name))
			var k []byte
			if vb != nil {
				k, _ = vb.Cursor().Last()
			}
			if k == nil {
				return notFoundf("model %q has no versions", r.Name)
			}
			v = binary.BigEndian.Uint32(k)
		}
		vr, err := getVersionRec(tx, r.Name, v)
		if err != nil {
			return err
		}
		out = toVersion(r.Name, m, vr)
		out.Ref.Alias = r.Alias
		return nil
	})
	if err != nil {
		return Version{}, err // its message names the model, version or alias
	}
	return out, nil
}
