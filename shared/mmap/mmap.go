// Package mmap maps files read-only into memory so that model loaders can
// hand out tensor slices without copying gigabytes of weights. On platforms
// without mmap support the file is read into memory instead; callers see the
// same API either way.
package mmap

import (
	"fmt"
	"os"
)

// Mapping is a read-only view of a whole file. Its bytes must not be written
// and must not be used after Close.
type Mapping struct {
	data   []byte
	mapped bool // data came from mmap and must be unmapped
}

// Open maps the file at path read-only. An empty file yields an empty mapping.
func Open(path string) (*Mapping, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("mmap: stat %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("mmap: %s is not a regular file", path)
	}
	size := st.Size()
	if size == 0 {
		return &Mapping{data: []byte{}}, nil
	}
	if int64(int(size)) != size || size < 0 {
		return nil, fmt.Errorf("mmap: %s: size %d does not fit in memory", path, size)
	}
	data, mapped, err := mapFile(f, int(size))
	if err != nil {
		return nil, fmt.Errorf("mmap: %s: %w", path, err)
	}
	return &Mapping{data: data, mapped: mapped}, nil
}

// Bytes returns the file contents. The slice aliases the mapping.
func (m *Mapping) Bytes() []byte {
	if m == nil {
		return nil
	}
	return m.data
}

// Len returns the file size in bytes.
func (m *Mapping) Len() int { return len(m.Bytes()) }

// Close releases the mapping; calling it again is a no-op.
func (m *Mapping) Close() error {
	if m == nil || m.data == nil {
		return nil
	}
	data, mapped := m.data, m.mapped
	m.data, m.mapped = nil, false
	if mapped {
		if err := unmap(data); err != nil {
			return fmt.Errorf("mmap: unmap: %w", err)
		}
	}
	return nil
}
