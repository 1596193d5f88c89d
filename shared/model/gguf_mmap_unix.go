//go:build unix

package model

import (
	"fmt"
	"os"

	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"golang.org/x/sys/unix"
)

// openGGUF maps path read-only and parses it. drop tells the kernel that the
// pages of a decoded byte range of the data section are no longer needed, so the mapping does not add
// the whole file to the resident set while the copies are being made (the
// pages stay in the page cache). close unmaps the file.
func openGGUF(path string) (f *gguf.File, drop func(off, size uint64), closeFile func() error, err error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, nil, nil, err
	}
	if !st.Mode().IsRegular() || st.Size() == 0 || int64(int(st.Size())) != st.Size() {
		return nil, nil, nil, fmt.Errorf("not a non-empty regular file (%d bytes)", st.Size())
	}
	data, err := unix.Mmap(int(fd.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("mmap: %w", err)
	}
	f, err = gguf.Parse(data)
	if err != nil {
		unix.Munmap(data)
		return nil, nil, nil, err
	}
	page := uint64(os.Getpagesize())
	drop = func(off, size uint64) {
		// Only whole pages inside the range, so neighbours stay mapped in.
		off += uint64(f.DataOffset)
		start := (off + page - 1) / page * page
		end := (off + size) / page * page
		if start < end && end <= uint64(len(data)) {
			_ = unix.Madvise(data[start:end], unix.MADV_DONTNEED)
		}
	}
	return f, drop, func() error { return unix.Munmap(data) }, nil
}
