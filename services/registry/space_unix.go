//go:build unix

package registry

import "golang.org/x/sys/unix"

// diskFree returns the bytes an unprivileged writer can still put on the
// file system holding dir (-1 when unknown).
func diskFree(dir string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}
