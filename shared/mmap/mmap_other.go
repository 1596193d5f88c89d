//go:build !unix

package mmap

import (
	"io"
	"os"
)

// mapFile reads the whole file where mmap is not wired up (e.g. windows).
func mapFile(f *os.File, size int) ([]byte, bool, error) {
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, false, err
	}
	return data, false, nil
}

func unmap([]byte) error { return nil }
