package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// File names of a Hugging Face checkpoint directory.
const (
	SingleFileName = "model.safetensors"
	IndexFileName  = "model.safetensors.index.json"
)

// maxIndexSize bounds the index JSON read into memory.
const maxIndexSize = 64 << 20

// Checkpoint is the set of tensors of a Hugging Face checkpoint: one
// model.safetensors file, or the shards listed by model.safetensors.index.json.
type Checkpoint struct {
	files   []*File
	tensors map[string]Tensor
	names   []string
}

type indexJSON struct {
	Metadata  map[string]any    `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

// OpenCheckpoint opens the checkpoint in dir. The index, when present, wins
// over a single file; dir may also name a .safetensors file directly.
func OpenCheckpoint(dir string) (*Checkpoint, error) {
	if st, err := os.Stat(dir); err == nil && st.Mode().IsRegular() {
		f, err := Open(dir)
		if err != nil {
			return nil, err
		}
		return newCheckpoint([]*File{f}, nil)
	}
	indexPath := filepath.Join(dir, IndexFileName)
	raw, err := readLimited(indexPath, maxIndexSize)
	switch {
	case err == nil:
		return openSharded(dir, indexPath, raw)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	single := filepath.Join(dir, SingleFileName)
	if _, err := os.Stat(single); err != nil {
		return nil, fmt.Errorf("safetensors: checkpoint %s has neither %s nor %s", dir, SingleFileName, IndexFileName)
	}
	f, err := Open(single)
	if err != nil {
		return nil, err
	}
	return newCheckpoint([]*File{f}, nil)
}

func readLimited(path string, limit int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, over the limit %d", path, st.Size(), limit)
	}
	return os.ReadFile(path)
}

func openSharded(dir, indexPath string, raw []byte) (*Checkpoint, error) {
	var idx indexJSON
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("safetensors: index %s: %w", indexPath, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("safetensors: index %s: weight_map is empty", indexPath)
	}
	var shards []string
	for name, shard := range idx.WeightMap {
		if !isPlainFileName(shard) {
			return nil, fmt.Errorf("safetensors: index %s: tensor %q: shard %q must be a file name in the checkpoint directory", indexPath, name, shard)
		}
		if !slices.Contains(shards, shard) {
			shards = append(shards, shard)
		}
	}
	slices.Sort(shards)
	files := make([]*File, 0, len(shards))
	byShard := make(map[string]*File, len(shards))
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	for _, s := range shards {
		f, err := Open(filepath.Join(dir, s))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("safetensors: index %s: %w", indexPath, err)
		}
		files = append(files, f)
		byShard[s] = f
	}
	for name, shard := range idx.WeightMap {
		if _, ok := byShard[shard].Tensor(name); !ok {
			closeAll()
			return nil, fmt.Errorf("safetensors: index %s: tensor %q is not in shard %s", indexPath, name, shard)
		}
	}
	c, err := newCheckpoint(files, func(name string, f *File) bool {
		return byShard[idx.WeightMap[name]] == f
	})
	if err != nil {
		closeAll()
		return nil, err
	}
	return c, nil
}

// isPlainFileName accepts a bare, local file name: no directories, no "..".
func isPlainFileName(s string) bool {
	return s != "" && s != "." && s != ".." && filepath.IsLocal(s) &&
		!strings.ContainsAny(s, `/\`) && filepath.Base(s) == s
}

// newCheckpoint merges the files' tensors; keep (optional) picks which file
// owns a name, otherwise a name in two files is an error.
func newCheckpoint(files []*File, keep func(string, *File) bool) (*Checkpoint, error) {
	c := &Checkpoint{files: files, tensors: map[string]Tensor{}}
	owner := map[string]*File{}
	for _, f := range files {
		for _, n := range f.names {
			if keep != nil && !keep(n, f) {
				continue
			}
			if prev, dup := owner[n]; dup {
				return nil, fmt.Errorf("safetensors: tensor %q is in both %s and %s", n, prev.name, f.name)
			}
			owner[n] = f
			c.tensors[n] = f.tensors[n]
			c.names = append(c.names, n)
		}
	}
	slices.Sort(c.names)
	return c, nil
}

// Names returns all tensor names, sorted.
func (c *Checkpoint) Names() []string { return slices.Clone(c.names) }

// Tensor returns the named tensor from whichever shard holds it.
func (c *Checkpoint) Tensor(name string) (Tensor, bool) {
	t, ok := c.tensors[name]
	return t, ok
}

// Close unmaps every shard and returns the first error.
func (c *Checkpoint) Close() error {
	if c == nil {
		return nil
	}
	var first error
	for _, f := range c.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	c.files = nil
	return first
}
