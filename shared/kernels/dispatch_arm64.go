package kernels

import "github.com/klauspost/cpuid/v2"

// archImpls returns the arm64 SIMD paths this CPU supports: NEON always (Go's
// arm64 port requires Advanced SIMD), with SDOT when cpuid reports the
// dotprod extension (ASIMDDP, ARMv8.2+), else plain SMULL/SADALP kernels.
func archImpls() map[Path]impl {
	return map[Path]impl{NEON: neonImpl(hasSDOT())}
}

// hasSDOT reports whether the CPU executes SDOT/UDOT.
func hasSDOT() bool { return cpuid.CPU.Supports(cpuid.ASIMDDP) }
