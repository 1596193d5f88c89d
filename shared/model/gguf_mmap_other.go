//go:build !unix

package model

import "github.com/bitnet-mesh/bitnet-mesh/shared/gguf"

// openGGUF opens and parses path; see the unix version.
func openGGUF(path string) (f *gguf.File, drop func(off, size uint64), closeFile func() error, err error) {
	f, err = gguf.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	return f, func(uint64, uint64) {}, f.Close, nil
}
