package kernels

import (
	"runtime"
	"strconv"

	"github.com/klauspost/cpuid/v2"
)

// cpuFeatures are the CPU extensions the kernels use, read once from cpuid
// (which also checks that the OS saves the ymm/zmm state). This is the
// module's one CPU detector for SIMD dispatch: packages model and train
// take their float loops from here (Floats), and package hardware reports
// the same cpuid facts.
type cpuFeatures struct {
	avx2, fma, f16c                         bool
	avx512f, avx512bw, avx512vl, avx512vnni bool
	asimddp                                 bool
	vendor, brand                           string
	family, model, stepping                 int
	llc                                     int64 // last-level cache bytes, 0 when unknown
}

// cpu is read-only after package initialisation.
var cpu = detectCPU()

func detectCPU() cpuFeatures {
	c := cpuid.CPU
	return cpuFeatures{
		avx2: c.Supports(cpuid.AVX2), fma: c.Supports(cpuid.FMA3), f16c: c.Supports(cpuid.AVX, cpuid.F16C),
		avx512f: c.Supports(cpuid.AVX512F), avx512bw: c.Supports(cpuid.AVX512BW),
		avx512vl: c.Supports(cpuid.AVX512VL), avx512vnni: c.Supports(cpuid.AVX512VNNI),
		asimddp: c.Supports(cpuid.ASIMDDP),
		vendor:  c.VendorString, brand: c.BrandName,
		family: c.Family, model: c.Model, stepping: c.Stepping,
		llc: int64(max(c.Cache.L3, c.Cache.L2, 0)),
	}
}

// CacheResident reports whether weights of n bytes stay in the last-level
// cache between products (decoding streams every weight once per token:
// a model that fits runs MatMulResident, GEMVCache; one that does not
// streams from DRAM, GEMVMemory). Unknown cache sizes count as not.
func CacheResident(n int64) bool { return cpu.llc > 0 && n <= cpu.llc/2 }

// CPUID returns a microcode-independent identity of this CPU for caches of
// measurements: architecture, vendor, family, model, stepping and brand.
func CPUID() string {
	return runtime.GOARCH + "/" + cpu.vendor + "/" + strconv.Itoa(cpu.family) + "/" + strconv.Itoa(cpu.model) + "/" + strconv.Itoa(cpu.stepping) + "/" + cpu.brand
}
