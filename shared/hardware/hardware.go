// Package hardware reports what this machine offers to the BitNet kernels:
// architecture, CPU vendor and brand, the SIMD extensions the kernel paths use
// (AVX2, AVX-512 F/BW/VL/VNNI, NEON, dotprod, SVE), Metal, cores, cache and
// memory sizes, and the kernel paths it runs (package kernels).
//
// Inference nodes advertise the report in Consul as service Meta (see Meta
// and ParseMeta) so that the router can match requests to nodes. An operator
// may cap the kernel path (WithKernelCap) to make a node run and advertise a
// lower path than its CPU allows, e.g. avx2 on an AVX-512 machine.
package hardware

import (
	"fmt"
	"slices"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metal"
)

// Features are the CPU and GPU extensions relevant to the kernels. With a
// kernel cap, the extensions used only by paths above the cap read false:
// the node does not offer them.
type Features struct {
	AVX2       bool `json:"avx2"`
	AVX512F    bool `json:"avx512f"`
	AVX512BW   bool `json:"avx512bw"`
	AVX512VL   bool `json:"avx512vl"`
	AVX512VNNI bool `json:"avx512vnni"`
	// NEON is Advanced SIMD (ASIMD), present on every arm64 CPU Go runs on.
	NEON bool `json:"neon"`
	// DotProd is the ARMv8.2 SDOT/UDOT extension (cpuid ASIMDDP).
	DotProd bool `json:"dotprod"`
	SVE     bool `json:"sve"`
	// Metal mirrors Report.Metal.Available.
	Metal bool `json:"metal"`
}

// Report describes this machine. Sizes are bytes; zero means unknown.
type Report struct {
	Arch          string   `json:"arch"`
	OS            string   `json:"os"`
	Vendor        string   `json:"vendor,omitempty"`
	Brand         string   `json:"brand,omitempty"`
	Features      Features `json:"features"`
	PhysicalCores int      `json:"physical_cores"`
	LogicalCores  int      `json:"logical_cores"`
	CacheL1D      int64    `json:"cache_l1d_bytes"`
	CacheL2       int64    `json:"cache_l2_bytes"`
	CacheL3       int64    `json:"cache_l3_bytes"`
	MemoryBytes   uint64   `json:"memory_bytes"`
	// BestKernel is the kernel path the node runs: kernels.Best(), or the cap.
	BestKernel kernels.Path `json:"best_kernel"`
	// Kernels lists the paths the node offers, generic first, then SIMD paths narrowest first, none above the cap.
	Kernels []kernels.Path `json:"kernels"`
	// KernelCap is the operator's cap, empty when none was set.
	KernelCap kernels.Path `json:"kernel_cap,omitempty"`
	Metal     metal.Info   `json:"metal"`
	// Perf holds the node's measured figures (zero when not measured):
	// the router ranks nodes by them, not by ISA names.
	Perf Perf `json:"perf,omitzero"`
}

// Perf is what a node measured about itself at start (kernels.LoadPlan and
// a read probe): speeds, not ISA labels. Zero fields mean "not measured".
type Perf struct {
	// ReadGBps is the memory read bandwidth at the node's thread count.
	ReadGBps float64 `json:"read_gbps,omitempty"`
	// DecodeTokS and PrefillTokS estimate tokens per second for the
	// reference shape (BitNet b1.58 2B4T) from the plan's timings.
	DecodeTokS  float64 `json:"decode_tok_s,omitempty"`
	PrefillTokS float64 `json:"prefill_tok_s,omitempty"`
	// Plan is the kernel plan in one line ("gemv_dram=avx2 ... (measured)").
	Plan string `json:"plan,omitempty"`
}

// WithMetal returns r with the GPU's state i (metal.Open's GPU Info, or
// metal.Unavailable's reason). runs says whether the node's kernel plan
// runs products on the GPU: then metal joins the kernel paths the node
// offers, as the one it runs (BestKernel), so that requests requiring or
// preferring metal reach it. Features.Metal reports a GPU that passed its
// self-test, whether or not the plan uses it.
func (r Report) WithMetal(i metal.Info, runs bool) Report {
	r.Metal = i
	r.Features.Metal = i.Available
	r.Kernels = slices.DeleteFunc(slices.Clone(r.Kernels), func(p kernels.Path) bool { return p == kernels.Metal })
	if i.Available && runs {
		r.Kernels = append(r.Kernels, kernels.Metal)
		r.BestKernel = kernels.Metal
	} else if r.BestKernel == kernels.Metal && len(r.Kernels) > 0 {
		r.BestKernel = r.Kernels[len(r.Kernels)-1]
	}
	return r
}

// WithPerf returns r with the measured figures p.
func (r Report) WithPerf(p Perf) Report {
	r.Perf = p
	return r
}

// Option configures Detect.
type Option func(*config)

type config struct {
	cap kernels.Path
}

// WithKernelCap caps the kernel path: the report's BestKernel becomes p and
// no faster path is listed. Detect fails if this CPU cannot run p. An empty
// p means no cap.
func WithKernelCap(p kernels.Path) Option { return func(c *config) { c.cap = p } }

// Detect inspects this machine. It fails only when a kernel cap names a path
// this CPU cannot run (the error wraps kernels.ErrUnsupported) or an unknown one.
func Detect(opts ...Option) (Report, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	return build(probeMachine(), c)
}

// machine is the raw facts Detect reads, separated from the capping and
// flattening logic so tests can supply any CPU.
type machine struct {
	arch, os      string
	vendor, brand string
	features      Features
	physical      int
	logical       int
	l1d, l2, l3   int64
	memory        uint64
	kernels       []kernels.Path // kernels.Supported(): generic first, then SIMD paths narrowest first
	metal         metal.Info
}

// build applies the cap to m and returns the report.
func build(m machine, c config) (Report, error) {
	r := Report{
		Arch: m.arch, OS: m.os, Vendor: m.vendor, Brand: m.brand, Features: m.features,
		PhysicalCores: m.physical, LogicalCores: m.logical,
		CacheL1D: m.l1d, CacheL2: m.l2, CacheL3: m.l3, MemoryBytes: m.memory,
		Kernels: slices.Clone(m.kernels), Metal: m.metal,
	}
	if len(r.Kernels) == 0 {
		r.Kernels = []kernels.Path{kernels.Generic}
	}
	r.Features.Metal = m.metal.Available
	if c.cap != "" {
		p, err := kernels.ParsePath(string(c.cap))
		if err != nil {
			return Report{}, fmt.Errorf("hardware: kernel cap: %w", err)
		}
		i := slices.Index(r.Kernels, p)
		if i < 0 {
			return Report{}, fmt.Errorf("hardware: kernel cap %q on %s/%s %s (supported: %v): %w",
				p, m.os, m.arch, m.brand, r.Kernels, kernels.ErrUnsupported)
		}
		r.Kernels = r.Kernels[:i+1]
		r.KernelCap = p
		r.Features = capFeatures(r.Features, r.Kernels)
	}
	r.BestKernel = r.Kernels[len(r.Kernels)-1]
	return r, nil
}

// capFeatures clears the extensions that only paths missing from ks use.
func capFeatures(f Features, ks []kernels.Path) Features {
	if !slices.Contains(ks, kernels.AVX512) {
		f.AVX512F, f.AVX512BW, f.AVX512VL, f.AVX512VNNI = false, false, false, false
	}
	if !slices.Contains(ks, kernels.AVX2) {
		f.AVX2 = false
	}
	if !slices.Contains(ks, kernels.NEON) {
		f.NEON, f.DotProd = false, false
	}
	return f
}

// TotalMemory is the machine's RAM in bytes (0 where the OS does not say).
func TotalMemory() uint64 { return totalMemory() }
