package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/safetensors"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// Validator checks a version's files when the version is created, before
// it is recorded: dir is a directory holding the version's files under
// their paths (links to the stored blobs). An error wrapping ErrInvalid
// refuses the version (INVALID_ARGUMENT) with its message; dir's path must
// not appear in it. WithValidator installs one; ValidateModelFiles is the
// mesh's.
type Validator func(ctx context.Context, spec VersionSpec, dir string) error

// WithValidator checks every version's files at CreateVersion (default
// none: the Store itself holds any bytes).
func WithValidator(v Validator) Option { return func(o *options) { o.validate = v } }

// ValidateModelFiles refuses a version no inference node could load,
// naming the problem, by reading what a load reads first and nothing the
// size of the weights: for FormatGGUF its one .gguf file's header (config,
// limits, tensor names, dims and types, tokenizer: model.InspectGGUF); for
// the Hugging Face formats config.json (and generation_config.json), the
// safetensors headers (and index) and tokenizer.json when present.
func ValidateModelFiles(ctx context.Context, spec VersionSpec, dir string) error {
	paths := make([]string, 0, len(spec.Files))
	for _, f := range spec.Files {
		paths = append(paths, f.Path)
	}
	switch spec.Metadata.Format {
	case FormatGGUF:
		var ggufs []string
		for _, p := range paths {
			if strings.EqualFold(filepath.Ext(p), ".gguf") {
				ggufs = append(ggufs, p)
			}
		}
		if len(ggufs) != 1 {
			return invalidf("a %s version needs exactly one .gguf file, got %d", FormatGGUF, len(ggufs))
		}
		if _, err := model.InspectGGUF(filepath.Join(dir, filepath.FromSlash(ggufs[0])), true); err != nil {
			return invalidf("file %s: %v", ggufs[0], err)
		}
		return nil
	case FormatHFSafetensors, FormatHFPacked:
		if !slices.Contains(paths, "config.json") {
			return invalidf("a %s version needs config.json", spec.Metadata.Format)
		}
		c, err := model.LoadConfigHF(dir)
		if err != nil {
			return invalidf("%v", err)
		}
		if !slices.ContainsFunc(paths, func(p string) bool { return strings.HasSuffix(p, ".safetensors") }) {
			return invalidf("a %s version needs model.safetensors (or shards with model.safetensors.index.json)", spec.Metadata.Format)
		}
		ck, err := safetensors.OpenCheckpoint(dir)
		if err != nil {
			return invalidf("%v", err)
		}
		ck.Close()
		if slices.Contains(paths, "tokenizer.json") {
			tok, err := tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
			if err != nil {
				return invalidf("tokenizer.json: %v", err)
			}
			if tok.VocabSize() > c.VocabSize {
				return invalidf("tokenizer.json has %d tokens, more than vocab_size = %d", tok.VocabSize(), c.VocabSize)
			}
		}
		return nil
	}
	return nil // validateMetadata refused other formats already
}

// validateFiles runs the Store's validator on spec's files (stored blobs,
// linked under their paths in a scratch directory); messages name the
// files by their paths in the version, never by this host's.
func (s *Store) validateFiles(ctx context.Context, spec VersionSpec) error {
	if s.opts.validate == nil {
		return nil
	}
	dir, err := os.MkdirTemp(filepath.Join(s.dir, "uploads"), "validate-")
	if err != nil {
		return fmt.Errorf("validate: %w", err)
	}
	defer os.RemoveAll(dir)
	for _, f := range spec.Files {
		d, err := ParseDigest(string(f.Digest))
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("validate: %w", err)
		}
		if err := os.Symlink(s.blobPath(d), dst); err != nil {
			return fmt.Errorf("validate: %w", err)
		}
		if _, err := os.Stat(dst); errors.Is(err, fs.ErrNotExist) {
			// Left to CreateVersion, which reports the missing blob.
			return nil
		}
	}
	err = s.opts.validate(ctx, spec, dir)
	if err == nil {
		return nil
	}
	msg := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
	msg = strings.ReplaceAll(msg, dir, ".")
	msg = strings.ReplaceAll(msg, filepath.Join(s.dir, "blobs"), "blobs")
	if errors.Is(err, ErrInvalid) {
		return &validationError{msg: msg}
	}
	return fmt.Errorf("validate: %s", msg)
}

// validationError is a refused version's files, as clients read it.
type validationError struct{ msg string }

func (e *validationError) Error() string { return "model files: " + e.msg }
func (e *validationError) Unwrap() error { return ErrInvalid }
