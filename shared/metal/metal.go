// Package metal runs BitNet's BitLinear products and output heads on Apple
// GPUs (Metal), bit-identical to package kernels' CPU paths (a NaN, which
// only a token with an Inf or NaN produces, matches any NaN: IEEE 754
// leaves its sign and payload to the hardware, and x86 and arm64 already
// differ there; SameFloat).
//
// # Kernels
//
// The kernels are Metal Shading Language (common.metal, matmul.metal,
// quantize.metal), embedded and compiled at run time with
// newLibraryWithSource (fast math off): ternary GEMV (one token: decode)
// and tiled GEMM (prefill, batched decode) on package ternary's packed
// 2-bit layout with per-token int8 activations, the int8, int6 and int4
// output heads, and activation quantisation. Dot products are exact int32
// sums reduced with simd_sum; the GEMM stages each token tile's
// activations in threadgroup memory so that every weight word read serves
// eight tokens. The float scaling is done as the CPU does it: the scale
// ratio with an integer division correctly rounded like IEEE 754 (so no
// GPU division, which MSL allows to be 2.5 ulp off, is trusted), the
// int-to-float conversion rounded to nearest even, one float product.
//
// # Host
//
// GPU drives a Backend: the Metal device (OpenDevice, darwin/arm64 only)
// through the Objective-C runtime with github.com/ebitengine/purego, so no
// cgo is needed and `GOOS=darwin go build ./...` and `go vet` work from any
// machine. Buffers are shared with the CPU (MTLStorageModeShared); weights
// are mapped once, in place where Metal accepts the pages
// (newBufferWithBytesNoCopy on unified memory), else copied, and Stats
// reports which. Activation and output buffers are reused; command buffers
// (one per call, holding every product of the call, e.g. q, k and v) are
// created with unretained references, as Metal command buffers cannot be
// committed twice, and complete asynchronously: a completion handler (an
// Objective-C block) wakes the waiting goroutine.
//
// # What was verified where
//
// Without a Mac, the kernels are checked by emulation (package emulator):
// the same source, byte for byte, compiles as C++ against a header that
// emulates threadgroups, SIMD groups, threadgroup memory and barriers with
// their real semantics, and the tests run GPU over the emulator on many
// shapes (row and column tails, n = 1..70 tokens) and compare every output
// bit with package kernels' generic path. The Metal host code (the purego
// calls) is compiled and vetted for darwin/arm64 in CI but runs only on a
// Mac. There, a node opens the GPU with Open, which compiles the kernels and
// runs SelfTest (GEMV and GEMM of every format and quantisation against the
// CPU, exact) before the node advertises metal; on any failure it logs why
// and serves on the CPU (NEON). On a Mac, `go test ./shared/metal/...` also
// runs the real-GPU tests (skipped elsewhere).
package metal

import (
	"errors"
	"fmt"
)

// Reasons Probe and Unavailable give for Available = false.
const (
	ReasonNotStarted = "metal not started (a node self-tests the GPU at start)"
	ReasonNotMacOS   = "metal requires macOS"
	ReasonNoAppleSi  = "metal backend needs an Apple Silicon GPU"
	ReasonNotArm64   = "metal backend needs the darwin/arm64 build"
)

// ErrUnavailable reports a machine or build without the Metal backend.
var ErrUnavailable = errors.New("metal: unavailable")

// Info is what a node reports about its GPU.
type Info struct {
	// Available reports that the node runs products on the GPU: it opened
	// it and the self-test passed.
	Available bool `json:"available"`
	// Reason says why Available is false.
	Reason string `json:"reason,omitempty"`
	// Device names the GPU found, if any (e.g. "Apple M2 Pro GPU").
	Device string `json:"device,omitempty"`
}

// Probe reports whether this machine has a GPU the Metal backend could use,
// without opening it: Available is always false (Open decides). It never
// fails: anything it cannot determine is reported as unavailable.
func Probe() Info { return probe() }

// fromSysctl builds the darwin answer from the sysctls hw.optional.arm64
// (1 on Apple Silicon) and machdep.cpu.brand_string; split out so that every
// platform tests it. arm64Build says whether this binary is darwin/arm64.
func fromSysctl(arm64 uint32, arm64Err error, brand string, arm64Build bool) Info {
	if arm64Err != nil || arm64 != 1 {
		return Info{Reason: ReasonNoAppleSi}
	}
	dev := "Apple Silicon GPU"
	if brand != "" {
		dev = brand + " GPU"
	}
	if !arm64Build {
		return Info{Reason: ReasonNotArm64, Device: dev}
	}
	return Info{Reason: ReasonNotStarted, Device: dev}
}

// Open opens the Metal device, compiles the kernels and runs SelfTest; the
// error says why the GPU cannot be used (the node then serves on the CPU).
func Open() (*GPU, error) {
	b, err := OpenDevice()
	if err != nil {
		return nil, err
	}
	g := New(b)
	if err := SelfTest(g); err != nil {
		_ = g.Close()
		return nil, fmt.Errorf("metal: self-test on %s: %w", b.Name(), err)
	}
	return g, nil
}

// Info reports an open GPU as available.
func (g *GPU) Info() Info { return Info{Available: true, Device: g.Name()} }

// Unavailable reports why Open failed, with the device Probe found (on a
// machine without the backend, Probe's reason says it best).
func Unavailable(err error) Info {
	i := Probe()
	if err != nil && !(errors.Is(err, ErrUnavailable) && i.Reason != ReasonNotStarted) {
		i.Reason = err.Error()
	}
	return i
}
