//go:build !amd64

package kernels

// readSumSIMD consumes nothing off amd64: ReadSum sums in Go.
func readSumSIMD([]byte, bool) (int, uint64) { return 0, 0 }
