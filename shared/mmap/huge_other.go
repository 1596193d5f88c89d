//go:build !linux

package mmap

// HugePages is a no-op where transparent huge pages are not wired up; it
// returns 0 (see the Linux version).
func HugePages(b []byte) int { return 0 }

// Advise marks b for huge pages where the OS has them (Linux only).
func Advise(b []byte) bool { return false }
