package inference

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
)

// Local is a model version available on this node's disk.
type Local struct {
	// Ref is the resolved reference: name and version (and the alias asked
	// for, if any).
	Ref *modelv1.ModelRef
	// Path is a Hugging Face directory or a .gguf file (model.Load's input).
	Path string
	// SHA256 is the hex digest the fetcher verified; empty for trusted local
	// files.
	SHA256 string
	// Size is the bytes on disk.
	Size   int64
	Format modelv1.ModelFormat
	// Quant is the file's quantization when the fetcher knows it.
	Quant modelv1.QuantType
}

// Fetcher resolves a reference to a local copy of the model, downloading and
// verifying it when needed. A registry client implements it; DirFetcher
// serves local directories. Fetch must be safe for concurrent use and answer
// an unknown model with an error wrapping ErrNotFound.
type Fetcher interface {
	Fetch(ctx context.Context, ref *modelv1.ModelRef) (Local, error)
}

// Lister is implemented by fetchers that can enumerate their models
// (ListModels); versions are in name order.
type Lister interface {
	List(ctx context.Context) ([]Local, error)
}

// DirFetcher serves the models in one local directory as version 1 of the
// model named by the entry: a subdirectory with config.json (Hugging Face) or
// a NAME.gguf file. Names must be valid model names (lowercase). Aliases are
// not supported. Local files are trusted (no digest).
type DirFetcher struct {
	Root string
}

// Fetch implements Fetcher.
func (d DirFetcher) Fetch(ctx context.Context, ref *modelv1.ModelRef) (Local, error) {
	if err := modelv1.CheckName(ref.GetName()); err != nil {
		return Local{}, err
	}
	if ref.GetAlias() != "" || ref.GetVersion() > 1 {
		return Local{}, notFoundf("model %s: this node's model directory has version 1 of each model and no aliases", ref.Text())
	}
	for _, l := range d.candidates(ref.GetName()) {
		if st, err := os.Stat(l.Path); err == nil && (st.IsDir() == (l.Format != modelv1.ModelFormat_MODEL_FORMAT_GGUF)) {
			if l.Format != modelv1.ModelFormat_MODEL_FORMAT_GGUF {
				if _, err := os.Stat(filepath.Join(l.Path, "config.json")); err != nil {
					continue
				}
			}
			l.Size = diskSize(l.Path)
			return l, nil
		}
	}
	// The node's directory stays out of the message: clients see it.
	return Local{}, notFoundf("model %q: this node's model directory has no %s/ with config.json nor %s.gguf", ref.GetName(), ref.GetName(), ref.GetName())
}

func (d DirFetcher) candidates(name string) []Local {
	ref := &modelv1.ModelRef{Name: name, Version: 1}
	return []Local{
		{Ref: ref, Path: filepath.Join(d.Root, name), Format: modelv1.ModelFormat_MODEL_FORMAT_HF_SAFETENSORS},
		{Ref: ref, Path: filepath.Join(d.Root, name+".gguf"), Format: modelv1.ModelFormat_MODEL_FORMAT_GGUF},
	}
}

// List implements Lister.
func (d DirFetcher) List(ctx context.Context) ([]Local, error) {
	ents, err := os.ReadDir(d.Root)
	if err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	var out []Local
	for _, e := range ents {
		name := strings.TrimSuffix(e.Name(), ".gguf")
		if modelv1.CheckName(name) != nil {
			continue
		}
		if l, err := d.Fetch(ctx, &modelv1.ModelRef{Name: name}); err == nil && !slices.ContainsFunc(out, func(o Local) bool { return o.Ref.Name == name }) {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b Local) int { return strings.Compare(a.Ref.Name, b.Ref.Name) })
	return out, nil
}

// diskSize returns a file's size, or the total size of a directory's files.
func diskSize(path string) int64 {
	var n int64
	_ = filepath.WalkDir(path, func(_ string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if info, err := e.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// VerifySHA256 checks that the file at path hashes to want (hex), for
// Fetcher implementations that download blobs.
func VerifySHA256(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, want) {
		return fmt.Errorf("verify %s: sha256 %s, want %s", path, got, want)
	}
	return nil
}
