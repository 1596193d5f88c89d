package hardware

import (
	"runtime"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metal"
	"github.com/klauspost/cpuid/v2"
)

// probeMachine gathers the facts from cpuid, the OS and the kernels package.
func probeMachine() machine {
	c := cpuid.CPU
	m := machine{
		arch:   runtime.GOARCH,
		os:     runtime.GOOS,
		vendor: c.VendorString,
		brand:  c.BrandName,
		features: Features{
			AVX2:       c.Supports(cpuid.AVX2),
			AVX512F:    c.Supports(cpuid.AVX512F),
			AVX512BW:   c.Supports(cpuid.AVX512BW),
			AVX512VL:   c.Supports(cpuid.AVX512VL),
			AVX512VNNI: c.Supports(cpuid.AVX512VNNI),
			// Go's arm64 port requires Advanced SIMD, whatever cpuid can see
			// (it reads nothing on some OSes).
			NEON:    c.Supports(cpuid.ASIMD) || runtime.GOARCH == "arm64",
			DotProd: c.Supports(cpuid.ASIMDDP),
			SVE:     c.Supports(cpuid.SVE),
		},
		physical: c.PhysicalCores,
		logical:  c.LogicalCores,
		l1d:      positive(c.Cache.L1D),
		l2:       positive(c.Cache.L2),
		l3:       positive(c.Cache.L3),
		memory:   totalMemory(),
		kernels:  kernels.Supported(),
		metal:    metal.Probe(),
	}
	if m.vendor == "" && c.VendorID != cpuid.VendorUnknown {
		m.vendor = c.VendorID.String()
	}
	if m.logical <= 0 {
		m.logical = runtime.NumCPU()
	}
	if m.physical <= 0 {
		m.physical = m.logical / max(c.ThreadsPerCore, 1)
	}
	// cpuid reads caches only on x86; the OS knows them elsewhere.
	if m.l1d == 0 || m.l2 == 0 || m.l3 == 0 {
		l1d, l2, l3 := osCaches()
		m.l1d, m.l2, m.l3 = orElse(m.l1d, l1d), orElse(m.l2, l2), orElse(m.l3, l3)
	}
	if m.brand == "" {
		m.brand = osBrand()
	}
	return m
}

func positive(n int) int64 { return int64(max(n, 0)) }

func orElse(v, alt int64) int64 {
	if v > 0 {
		return v
	}
	return alt
}
