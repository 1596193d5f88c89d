//go:build !amd64 && !arm64

package kernels

// archVariants returns no SIMD variants: this architecture runs the generic kernels.
func archVariants() []variant { return nil }
