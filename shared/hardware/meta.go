package hardware

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metal"
)

// Meta keys. Consul accepts at most 64 pairs, keys of at most 128 characters
// in [A-Za-z0-9_-] and values of at most 512 characters; the report uses 26 at
// most, leaving room for the node's own (version, load, ...).
const (
	KeyArch          = "arch"
	KeyOS            = "os"
	KeyVendor        = "vendor"
	KeyBrand         = "brand"
	KeyKernel        = "kernel"     // best (or capped) kernel path
	KeyKernels       = "kernels"    // comma-separated, generic first, then SIMD paths narrowest first
	KeyKernelCap     = "kernel_cap" // present only with a cap
	KeyCores         = "cores"      // logical cores
	KeyPhysicalCores = "physical_cores"
	KeyL1D           = "l1d_bytes"
	KeyL2            = "l2_bytes"
	KeyL3            = "l3_bytes"
	KeyMemory        = "memory_bytes"
	KeyMetalDevice   = "metal_device" // present only when a GPU was found
	// Measured figures (Perf), present only when measured.
	KeyReadGBps    = "read_gbps"
	KeyDecodeTokS  = "decode_tok_s"
	KeyPrefillTokS = "prefill_tok_s"
	KeyKernelPlan  = "kernel_plan"
)

// MaxMetaValue is Consul's limit on a Meta value's length.
const MaxMetaValue = 512

// ErrMeta reports service Meta that does not describe hardware.
var ErrMeta = errors.New("hardware: bad meta")

// intKey binds a numeric Meta key to the field it fills.
type intKey struct {
	key string
	v   *int64
}

// flagKey binds a feature flag's Meta key to its field.
type flagKey struct {
	key string
	v   *bool
}

// flags maps each feature flag's Meta key (and requirement name) to its field.
func flags(f *Features) []flagKey {
	return []flagKey{
		{"avx2", &f.AVX2}, {"avx512f", &f.AVX512F}, {"avx512bw", &f.AVX512BW}, {"avx512vl", &f.AVX512VL},
		{"avx512vnni", &f.AVX512VNNI}, {"neon", &f.NEON}, {"dotprod", &f.DotProd}, {"sve", &f.SVE},
		{"metal", &f.Metal},
	}
}

// Meta flattens the report into Consul service Meta: every flag as
// "true"/"false", numbers in decimal, kernel paths by name. ParseMeta reverses it.
func (r Report) Meta() map[string]string {
	m := map[string]string{
		KeyArch:          clip(r.Arch),
		KeyOS:            clip(r.OS),
		KeyKernel:        string(r.BestKernel),
		KeyKernels:       joinPaths(r.Kernels),
		KeyCores:         strconv.Itoa(r.LogicalCores),
		KeyPhysicalCores: strconv.Itoa(r.PhysicalCores),
		KeyL1D:           strconv.FormatInt(r.CacheL1D, 10),
		KeyL2:            strconv.FormatInt(r.CacheL2, 10),
		KeyL3:            strconv.FormatInt(r.CacheL3, 10),
		KeyMemory:        strconv.FormatUint(r.MemoryBytes, 10),
	}
	if r.Vendor != "" {
		m[KeyVendor] = clip(r.Vendor)
	}
	if r.Brand != "" {
		m[KeyBrand] = clip(r.Brand)
	}
	if r.KernelCap != "" {
		m[KeyKernelCap] = string(r.KernelCap)
	}
	if r.Metal.Device != "" {
		m[KeyMetalDevice] = clip(r.Metal.Device)
	}
	f := r.Features
	for _, fl := range flags(&f) {
		m[fl.key] = strconv.FormatBool(*fl.v)
	}
	for _, pk := range perfKeys(&r.Perf) {
		if *pk.v > 0 {
			m[pk.key] = strconv.FormatFloat(*pk.v, 'f', 2, 64)
		}
	}
	if r.Perf.Plan != "" {
		m[KeyKernelPlan] = clip(r.Perf.Plan)
	}
	return m
}

// perfKey binds a measured figure's Meta key to its field.
type perfKey struct {
	key string
	v   *float64
}

func perfKeys(p *Perf) []perfKey {
	return []perfKey{{KeyReadGBps, &p.ReadGBps}, {KeyDecodeTokS, &p.DecodeTokS}, {KeyPrefillTokS, &p.PrefillTokS}}
}

// ParseMeta rebuilds a report from service Meta written by Meta, ignoring
// keys it does not know. Keys Meta always writes may be missing (older
// nodes): they read as zero, except kernel and kernels, which are required.
// Metal.Reason is not carried and reads empty.
func ParseMeta(meta map[string]string) (Report, error) {
	r := Report{Arch: meta[KeyArch], OS: meta[KeyOS], Vendor: meta[KeyVendor], Brand: meta[KeyBrand]}
	var err error
	if r.BestKernel, err = kernels.ParsePath(meta[KeyKernel]); err != nil {
		return Report{}, fmt.Errorf("%w: key %q: %w", ErrMeta, KeyKernel, err)
	}
	for s := range strings.SplitSeq(meta[KeyKernels], ",") {
		p, err := kernels.ParsePath(s)
		if err != nil {
			return Report{}, fmt.Errorf("%w: key %q: %w", ErrMeta, KeyKernels, err)
		}
		r.Kernels = append(r.Kernels, p)
	}
	if !slices.Contains(r.Kernels, r.BestKernel) {
		return Report{}, fmt.Errorf("%w: kernel %q not in kernels %q", ErrMeta, r.BestKernel, meta[KeyKernels])
	}
	if s, ok := meta[KeyKernelCap]; ok {
		if r.KernelCap, err = kernels.ParsePath(s); err != nil {
			return Report{}, fmt.Errorf("%w: key %q: %w", ErrMeta, KeyKernelCap, err)
		}
	}
	var cores, phys int64
	ints := []intKey{{KeyL1D, &r.CacheL1D}, {KeyL2, &r.CacheL2}, {KeyL3, &r.CacheL3}, {KeyCores, &cores}, {KeyPhysicalCores, &phys}}
	for _, it := range ints {
		if s, ok := meta[it.key]; ok {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 || n > 1<<62 {
				return Report{}, fmt.Errorf("%w: key %q: %q is not a count in [0, 2^62]", ErrMeta, it.key, s)
			}
			*it.v = n
		}
	}
	if cores > 1<<31 || phys > 1<<31 {
		return Report{}, fmt.Errorf("%w: %d cores, %d physical: too many", ErrMeta, cores, phys)
	}
	r.LogicalCores, r.PhysicalCores = int(cores), int(phys)
	if s, ok := meta[KeyMemory]; ok {
		if r.MemoryBytes, err = strconv.ParseUint(s, 10, 64); err != nil {
			return Report{}, fmt.Errorf("%w: key %q: %q is not a byte count", ErrMeta, KeyMemory, s)
		}
	}
	for _, fl := range flags(&r.Features) {
		if s, ok := meta[fl.key]; ok {
			if *fl.v, err = strconv.ParseBool(s); err != nil {
				return Report{}, fmt.Errorf("%w: key %q: %q is not true or false", ErrMeta, fl.key, s)
			}
		}
	}
	r.Metal = metal.Info{Available: r.Features.Metal, Device: meta[KeyMetalDevice]}
	for _, pk := range perfKeys(&r.Perf) {
		if s, ok := meta[pk.key]; ok {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || !(v >= 0) || v > 1e12 {
				return Report{}, fmt.Errorf("%w: key %q: %q is not a non-negative figure", ErrMeta, pk.key, s)
			}
			*pk.v = v
		}
	}
	r.Perf.Plan = meta[KeyKernelPlan]
	return r, nil
}

// Has reports whether the node offers a requirement as requests name it: a
// kernel path ("generic", "avx2", "avx512", "neon") or a feature flag
// ("avx512vnni", "dotprod", "sve", "metal", ...). Unknown names are an error.
func (r Report) Has(name string) (bool, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if p, err := kernels.ParsePath(n); err == nil {
		return slices.Contains(r.Kernels, p), nil
	}
	f := r.Features
	for _, fl := range flags(&f) {
		if fl.key == n {
			return *fl.v, nil
		}
	}
	return false, fmt.Errorf("hardware: unknown requirement %q (want a kernel path or one of %s)", name, strings.Join(Requirements(), ", "))
}

// Requirements lists the names Has accepts.
func Requirements() []string {
	names := []string{string(kernels.Generic), string(kernels.AVX2), string(kernels.AVX512), string(kernels.NEON)}
	var f Features
	for _, fl := range flags(&f) {
		if !slices.Contains(names, fl.key) {
			names = append(names, fl.key)
		}
	}
	return names
}

func joinPaths(ps []kernels.Path) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ",")
}

// clip makes s a valid Meta value: invalid UTF-8 replaced (Consul's JSON
// would do it anyway), then shortened to MaxMetaValue bytes without
// splitting a UTF-8 sequence.
func clip(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= MaxMetaValue {
		return s
	}
	s = s[:MaxMetaValue]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
