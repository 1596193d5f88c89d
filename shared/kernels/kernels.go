// Package kernels computes BitNet b1.58 BitLinear products: ternary weights
// (package ternary) times per-token absmax int8 activations, on the fastest
// SIMD path the CPU offers (generic Go, AVX2, AVX-512 VNNI, NEON SDOT), chosen
// at run time and overridable for tests and operators.
package kernels

import (
	"errors"
	"fmt"
	"strings"
)

// Path names an implementation of the kernels.
type Path string

// The kernel paths, slowest first.
const (
	Generic Path = "generic"
	AVX2    Path = "avx2"
	AVX512  Path = "avx512"
	NEON    Path = "neon"
)

// EnvPath is the environment variable operators set to force a kernel path.
const EnvPath = "BITNET_KERNEL"

// ErrUnsupported reports a kernel path this CPU cannot run.
var ErrUnsupported = errors.New("kernels: path not supported on this CPU")

// ErrShape reports mismatched operand shapes.
var ErrShape = errors.New("kernels: shape mismatch")

// ParsePath parses a path name ("generic", "avx2", "avx512", "neon").
func ParsePath(s string) (Path, error) {
	switch p := Path(strings.ToLower(strings.TrimSpace(s))); p {
	case Generic, AVX2, AVX512, NEON:
		return p, nil
	}
	return "", fmt.Errorf("kernels: unknown path %q (want generic, avx2, avx512 or neon)", s)
}
