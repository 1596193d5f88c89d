package kernels

// archVariants returns the arm64 kernel variants: NEON always (Go's arm64
// port requires Advanced SIMD), with SDOT when cpuid reports the dotprod
// extension (ASIMDDP, ARMv8.2+), else plain SMULL/SADALP kernels.
func archVariants() []variant {
	return []variant{{name: "neon", path: NEON, im: neonImpl(cpu.asimddp)}}
}

// hasSDOT reports whether the CPU executes SDOT/UDOT.
func hasSDOT() bool { return cpu.asimddp }
