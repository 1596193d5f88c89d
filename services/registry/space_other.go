//go:build !unix

package registry

// diskFree is unknown here: the free-space floor is not enforced.
func diskFree(string) int64 { return -1 }
