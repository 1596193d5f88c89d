//go:build !amd64 && !arm64

package kernels

// archImpls returns no SIMD paths: this architecture runs the generic kernels.
func archImpls() map[Path]impl { return nil }
