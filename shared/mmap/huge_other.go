//go:build !linux

package mmap

// HugePages is a no-op where transparent huge pages are not wired up; it
// returns 0 (see the Linux version).
func HugePages(b []byte) int { return 0 }
