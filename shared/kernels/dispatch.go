package kernels

import (
	"fmt"
	"runtime"
	"slices"

	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// impl is one kernel variant's implementation. Each computes rows [r0, r1) of y for every token of a,
// with the same contract (and bit-identical results) as the generic functions.
// A nil field means "use the generic function".
type impl struct {
	matMul     func(y []float32, w *ternary.Matrix, a *Activations, r0, r1 int)
	matMulInt8 func(y []float32, w *Int8Matrix, a *Activations, r0, r1 int)
	// matMulTrits runs one token against the 1.6-bit layout
	// (ternary.Matrix.Trits); nil: the variant reads Codes only.
	matMulTrits func(y []float32, w *ternary.Matrix, a *Activations, r0, r1 int)
	// matMulPacked runs 6- and 4-bit heads (nil: generic).
	matMulPacked func(y []float32, w *PackedMatrix, a *Activations, r0, r1 int)
	// prepare, when set, returns a.Q (a.N tokens of a.Stride bytes) rearranged
	// as matMul wants it, reusing buf. The engine calls it once per MatMul and
	// hands matMul a copy of a whose Q is the result.
	prepare func(buf []int8, a *Activations) []int8
}

// Variant names one implementation of the kernels: a path ("avx512") and,
// after a dash, a tuning of it ("avx512-nopf": no software prefetch;
// "avx512y": AVX-512 instructions on 256-bit vectors). A Plan assigns one
// to each operation class.
type Variant string

// variant is a Variant with its implementation.
type variant struct {
	name Variant
	path Path
	im   impl
	// gemvOnly: differs from its path's default only for one token, so
	// the plan measures it for the GEMV classes alone.
	gemvOnly bool
	// oneToken: differs from its path's default only for one token, the
	// output head included: measured for the GEMV classes and Head.
	oneToken bool
	// quant512: quantises activations with the AVX-512 loops.
	quant512 bool
	// tq1: one-token products read ternary.Matrix.Trits when present.
	tq1 bool
}

// archVariants (one per GOARCH file: dispatch_amd64.go, dispatch_arm64.go,
// dispatch_other.go) returns the SIMD variants compiled in AND supported by
// this CPU, each path's default variant first.

// pathOrder lists Generic, then amd64's paths narrowest first (AVX2, AVX512),
// then arm64's (NEON): an order by architecture and vector width, not by
// measured speed (Plan measures that). A CPU runs one architecture's paths,
// so Supported, which keeps this order, lists generic and then its SIMD
// paths narrowest first.
var pathOrder = [...]Path{Generic, AVX2, AVX512, NEON}

// variants is every variant this CPU runs, generic first, with nil fields
// filled by the generic functions; read-only after package initialisation
// (dispatch is decided once, not per call).
var variants = func() []variant {
	vs := append([]variant{{name: Variant(Generic), path: Generic}}, archVariants()...)
	// Each path's default variant also reads the 1.6-bit layout for one
	// token ("-tq1"): fewer bytes, more decoding work; the plan measures
	// whether it pays on this machine.
	var tq1 []variant
	for _, v := range vs {
		if v.gemvOnly || v.oneToken {
			continue
		}
		if v.im.matMulTrits != nil || v.path == Generic {
			t := v
			t.name += "-tq1"
			t.gemvOnly, t.tq1 = true, true
			if t.im.matMulTrits == nil {
				t.im.matMulTrits = matMulTritsGeneric
			}
			tq1 = append(tq1, t)
		}
	}
	vs = append(vs, tq1...)
	for i := range vs {
		if vs[i].im.matMul == nil {
			vs[i].im.matMul = matMulGeneric
		}
		if vs[i].im.matMulInt8 == nil {
			vs[i].im.matMulInt8 = matMulInt8Generic
		}
		vs[i].quant512 = vs[i].quant512 && hasAVX512Quant
	}
	return vs
}()

// lookupVariant returns the variant named v.
func lookupVariant(v Variant) (*variant, bool) {
	for i := range variants {
		if variants[i].name == v {
			return &variants[i], true
		}
	}
	return nil, false
}

// defaultVariant returns path p's default variant (its first).
func defaultVariant(p Path) (*variant, bool) {
	for i := range variants {
		if variants[i].path == p {
			return &variants[i], true
		}
	}
	return nil, false
}

// Variants returns the kernel variants this CPU runs: generic first, then
// each supported path's variants, its default first.
func Variants() []Variant {
	out := make([]Variant, len(variants))
	for i, v := range variants {
		out[i] = v.name
	}
	return out
}

// VariantPath returns the path a variant belongs to ("avx512y" -> avx512).
func VariantPath(v Variant) (Path, bool) {
	if x, ok := lookupVariant(v); ok {
		return x.path, true
	}
	return "", false
}

// Supported returns the kernel paths this CPU can run: Generic first, then
// its SIMD paths narrowest first (amd64: avx2, avx512; arm64: neon).
func Supported() []Path {
	ps := []Path{Generic}
	for _, p := range pathOrder[1:] {
		if _, ok := defaultVariant(p); ok {
			ps = append(ps, p)
		}
	}
	return ps
}

// Best returns the widest kernel path this CPU can run (the static choice
// when no plan is measured; see Plan).
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
	if cpu.brand != "" {
		return cpu.brand
	}
	return "unknown CPU"
}
