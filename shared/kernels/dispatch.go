package kernels

import (
	"fmt"
	"runtime"
	"slices"

	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
	"github.com/klauspost/cpuid/v2"
)

// impl is one kernel path's implementation. Each computes rows [r0, r1) of y for every token of a,
// with the same contract (and bit-identical results) as the generic functions.
// A nil field means "use the generic function".
type impl struct {
	matMul     func(y []float32, w *ternary.Matrix, a *Activations, r0, r1 int)
	matMulInt8 func(y []float32, w *Int8Matrix, a *Activations, r0, r1 int)
	// prepare, when set, returns a.Q (a.N tokens of a.Stride bytes) rearranged
	// as matMul wants it, reusing buf. The engine calls it once per MatMul and
	// hands matMul a copy of a whose Q is the result.
	prepare func(buf []int8, a *Activations) []int8
}

// archImpls (one per GOARCH file: dispatch_amd64.go, dispatch_arm64.go, dispatch_other.go) is
// declared in those files; it returns the SIMD paths compiled in AND supported by this CPU.

// pathOrder lists the paths slowest first; Supported keeps this order.
var pathOrder = [...]Path{Generic, AVX2, AVX512, NEON}

// impls returns every path this CPU runs, generic included, with nil fields
// filled by the generic functions.
func impls() map[Path]impl {
	m := archImpls()
	if m == nil {
		m = map[Path]impl{}
	}
	m[Generic] = impl{}
	for p, im := range m {
		if im.matMul == nil {
			im.matMul = matMulGeneric
		}
		if im.matMulInt8 == nil {
			im.matMulInt8 = matMulInt8Generic
		}
		m[p] = im
	}
	return m
}

// Supported returns the kernel paths this CPU can run, slowest first; Generic is always first.
func Supported() []Path {
	m := archImpls()
	ps := []Path{Generic}
	for _, p := range pathOrder[1:] {
		if _, ok := m[p]; ok {
			ps = append(ps, p)
		}
	}
	return ps
}

// Best returns the fastest kernel path this CPU can run.
func Best() Path {
	ps := Supported()
	return ps[len(ps)-1]
}

// IsSupported reports whether this CPU can run path p.
func IsSupported(p Path) bool { return slices.Contains(Supported(), p) }

// PathFromEnv reads EnvPath through getenv (pass os.Getenv). It returns
// ok=false when the variable is unset or empty, and an error when it names an
// unknown path or one this CPU lacks.
func PathFromEnv(getenv func(string) string) (p Path, ok bool, err error) {
	if getenv == nil {
		return "", false, nil
	}
	s := getenv(EnvPath)
	if s == "" {
		return "", false, nil
	}
	p, err = ParsePath(s)
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", EnvPath, err)
	}
	if !IsSupported(p) {
		return "", false, unsupported(p)
	}
	return p, true, nil
}

// unsupported builds the error for a path this CPU lacks, naming both.
func unsupported(p Path) error {
	return fmt.Errorf("%w: %q on %s/%s %s (supported: %v)", ErrUnsupported, p, runtime.GOOS, runtime.GOARCH, cpuName(), Supported())
}

// cpuName names the CPU in error messages.
func cpuName() string {
	if n := cpuid.CPU.BrandName; n != "" {
		return n
	}
	return "unknown CPU"
}
