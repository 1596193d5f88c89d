package kernels

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Class is an operation class: the engine runs each class with the kernel
// variant its Plan assigns, because the fastest variant differs by class
// and by CPU (on AMD Zen 4, AVX2 streams a decode GEMV faster than AVX-512,
// which wins prefill; on Zen 5 AVX-512 wins both).
type Class int

// The operation classes.
const (
	// GEMVMemory is one token against weights streamed from DRAM: decode
	// of a model larger than the caches.
	GEMVMemory Class = iota
	// GEMVCache is one token against cache-resident weights.
	GEMVCache
	// GEMMSmall is 2 to 16 tokens (batched decode); measured at n = 8.
	GEMMSmall
	// GEMMLarge is more than 16 tokens (prefill); measured at n = 64.
	GEMMLarge
	// Head is the output head for one token (timed in
	// MeasureConfig.HeadFormat).
	Head
	// Quantize is per-token activation quantisation.
	Quantize
	numClasses
)

var classNames = [numClasses]string{"gemv_dram", "gemv_cache", "gemm8", "gemm64", "head", "quantize"}

// Classes lists every class in order.
func Classes() []Class {
	cs := make([]Class, numClasses)
	for i := range cs {
		cs[i] = Class(i)
	}
	return cs
}

// String returns the class name ("gemv_dram", "gemm64", ...).
func (c Class) String() string {
	if c >= 0 && c < numClasses {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// ParseClass parses a class name as String writes it.
func ParseClass(s string) (Class, error) {
	if i := slices.Index(classNames[:], strings.TrimSpace(s)); i >= 0 {
		return Class(i), nil
	}
	return 0, fmt.Errorf("kernels: unknown operation class %q (want one of %s)", s, strings.Join(classNames[:], ", "))
}

// MarshalText writes the class name.
func (c Class) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText parses a class name.
func (c *Class) UnmarshalText(b []byte) error {
	x, err := ParseClass(string(b))
	if err != nil {
		return err
	}
	*c = x
	return nil
}

// classOf returns the class of a product of n tokens; resident reports
// weights that stay in cache between products.
func classOf(n int, resident bool) Class {
	switch {
	case n <= 1 && resident:
		return GEMVCache
	case n <= 1:
		return GEMVMemory
	case n <= 16:
		return GEMMSmall
	}
	return GEMMLarge
}

// Timing is one measurement: a variant running a class on one shape.
type Timing struct {
	Class   Class   `json:"class"`
	Variant Variant `json:"variant"`
	Rows    int     `json:"rows"`
	Cols    int     `json:"cols"`
	N       int     `json:"n"`
	NsPerOp float64 `json:"ns_per_op"`
}

// Plan assigns a kernel variant to every operation class.
type Plan struct {
	// Choice is the variant of each class.
	Choice map[Class]Variant `json:"choice"`
	// Source says where the plan came from: "static" (ISA order, nothing
	// measured), "forced" (--kernel), "measured" or "cache".
	Source string `json:"source"`
	// Forced is the path --kernel forced ("" unless Source is "forced").
	Forced Path `json:"forced,omitempty"`
	// Threads is the thread count the timings were taken with.
	Threads int `json:"threads,omitempty"`
	// Timings are the measurements the choice was made from.
	Timings []Timing `json:"timings,omitempty"`
	// PerShape overrides Choice for one-token products of one shape, where
	// a variant beat the class's choice there by more than ShapeMargin
	// (15%):
	// the loop shape that streams a matrix fastest depends on its row
	// length (on Zen 4 four rows side by side for 2560-wide rows, one row
	// at a time for 6912-wide ones).
	PerShape []ShapeChoice `json:"per_shape,omitempty"`
	// Key identifies the CPU, binary and shapes of a measured plan (the
	// cache key); Measured is when it was measured.
	Key      string    `json:"key,omitempty"`
	Measured time.Time `json:"measured,omitzero"`
}

// StaticPlan returns the plan without measurements: every class on the
// widest path's default variant (the choice before plans were measured).
func StaticPlan() Plan {
	p := ForcedPlan(Best())
	p.Source, p.Forced = "static", ""
	return p
}

// ForcedPlan returns the plan of a forced path: every class on its default
// variant (Generic also quantises in Go). It panics on a path this CPU
// lacks; check IsSupported first.
func ForcedPlan(path Path) Plan {
	v, ok := defaultVariant(path)
	if !ok {
		panic(unsupported(path))
	}
	p := Plan{Choice: map[Class]Variant{}, Source: "forced", Forced: path}
	for _, c := range Classes() {
		p.Choice[c] = v.name
	}
	return p
}

// Choose is the planner's decision: a pure function of recorded timings.
// For each class it sums each variant's time over the shapes measured for
// that class, counts only variants measured on every one of them, and
// picks the least total; a class without timings keeps fallback's choice.
// Ties keep the first variant in the order of ts.
//
// The 1.6-bit variants ("-tq1") rank like any other: a stop gave
// them a margin (the fastest within 5% of the fastest of all won), from
// plans that had put their products at 0.87-0.97 of the 2-bit ones while
// the model decoded 1.10x faster from them at two threads. Measured again
// a day later on the same Zen 4 host (docs/perf.md), the plans put them at
// 1.00-1.07 and the model decoded 0.94-0.97x as fast: the median timing
// (timeOps) had no bias to correct, the margin only chose the slower
// layout, and the 1.6-bit copy costs its bytes in memory beside the 2-bit
// codes.
func Choose(ts []Timing, fallback map[Class]Variant) map[Class]Variant {
	type key struct {
		c Class
		v Variant
	}
	total := map[key]float64{}
	count := map[key]int{}
	shapes := map[Class]map[[3]int]bool{}
	var order []key
	for _, t := range ts {
		if !(t.NsPerOp > 0) {
			continue
		}
		k := key{t.Class, t.Variant}
		if _, ok := total[k]; !ok {
			order = append(order, k)
		}
		total[k] += t.NsPerOp
		count[k]++
		if shapes[t.Class] == nil {
			shapes[t.Class] = map[[3]int]bool{}
		}
		shapes[t.Class][[3]int{t.Rows, t.Cols, t.N}] = true
	}
	out := map[Class]Variant{}
	for c, v := range fallback {
		out[c] = v
	}
	best := map[Class]float64{}
	for _, k := range order {
		if count[k] < len(shapes[k.c]) {
			continue
		}
		if b, ok := best[k.c]; !ok || total[k] < b {
			best[k.c] = total[k]
			out[k.c] = k.v
		}
	}
	return out
}

// ShapeChoice is the variant of a one-token class for one weight shape.
type ShapeChoice struct {
	Class   Class   `json:"class"`
	Rows    int     `json:"rows"`
	Cols    int     `json:"cols"`
	Variant Variant `json:"variant"`
}

// ShapeMargin is how much faster than the class's choice a variant must be
// on one shape to get it (ChooseShapes). One shape's timing is not averaged
// with others' as the class's total is, and on a shared machine it moves
// by 10% from one measurement to the next: a smaller win is noise.
const ShapeMargin = 0.15

// ChooseShapes returns, for the one-token classes (GEMVMemory, GEMVCache),
// each shape on which the fastest variant beats choice's by more than
// ShapeMargin, with that variant; a pure function of the timings, in their
// order.
func ChooseShapes(ts []Timing, choice map[Class]Variant) []ShapeChoice {
	type key struct {
		c    Class
		r, k int
	}
	best := map[key]Timing{}
	chosen := map[key]float64{}
	var order []key
	for _, t := range ts {
		if (t.Class != GEMVMemory && t.Class != GEMVCache) || t.N != 1 || !(t.NsPerOp > 0) || t.Variant == accelVariant {
			continue
		}
		k := key{t.Class, t.Rows, t.Cols}
		b, ok := best[k]
		if !ok {
			order = append(order, k)
		}
		if !ok || t.NsPerOp < b.NsPerOp {
			best[k] = t
		}
		if t.Variant == choice[t.Class] {
			chosen[k] = t.NsPerOp
		}
	}
	var out []ShapeChoice
	for _, k := range order {
		b := best[k]
		if c, ok := chosen[k]; ok && b.Variant != choice[k.c] && b.NsPerOp*(1+ShapeMargin) < c {
			out = append(out, ShapeChoice{Class: k.c, Rows: k.r, Cols: k.k, Variant: b.Variant})
		}
	}
	return out
}

// VariantFor returns the variant the plan runs class c with on a rows x
// cols matrix.
func (p Plan) VariantFor(c Class, rows, cols int) Variant {
	for _, s := range p.PerShape {
		if s.Class == c && s.Rows == rows && s.Cols == cols {
			return s.Variant
		}
	}
	return p.Choice[c]
}

// String describes the plan on one line: "gemv_dram=avx2 gemv_cache=avx512 ... (measured)".
func (p Plan) String() string {
	var b strings.Builder
	for _, c := range Classes() {
		if v, ok := p.Choice[c]; ok {
			fmt.Fprintf(&b, "%s=%s ", c, v)
		}
	}
	for _, sc := range p.PerShape {
		fmt.Fprintf(&b, "%s[%dx%d]=%s ", sc.Class, sc.Rows, sc.Cols, sc.Variant)
	}
	fmt.Fprintf(&b, "(%s)", p.Source)
	return b.String()
}

// Paths returns the paths the plan's variants belong to, in Supported's
// order (generic first, then SIMD paths narrowest first).
func (p Plan) Paths() []Path {
	var ps []Path
	for _, q := range pathOrder {
		for _, v := range p.Choice {
			if vp, ok := VariantPath(v); ok && vp == q && !slices.Contains(ps, q) {
				ps = append(ps, q)
			}
		}
	}
	if p.UsesAccelerator() {
		ps = append(ps, Metal)
	}
	return ps
}

// UsesAccelerator reports whether the plan runs a class on the GPU.
func (p Plan) UsesAccelerator() bool {
	for _, v := range p.Choice {
		if v == accelVariant {
			return true
		}
	}
	return false
}

// Best returns the timing of the chosen variant for class c on the shape
// rows x cols with n tokens, and ok = false when the plan has none.
func (p Plan) Best(c Class, rows, cols, n int) (Timing, bool) {
	for _, t := range p.Timings {
		if t.Class == c && t.Variant == p.VariantFor(c, rows, cols) && t.Rows == rows && t.Cols == cols && t.N == n {
			return t, true
		}
	}
	return Timing{}, false
}

// validate checks that every class has a variant this CPU runs (or,
// with an accelerator, the accelerator's variant for a product class).
func (p Plan) validate(acc bool) error {
	for _, c := range Classes() {
		v, ok := p.Choice[c]
		if !ok {
			return fmt.Errorf("kernels: plan has no variant for %s", c)
		}
		if v == accelVariant && acc && accelClass(c) {
			continue
		}
		if _, ok := lookupVariant(v); !ok {
			return fmt.Errorf("%w: plan variant %q for %s (this CPU runs %v)", ErrUnsupported, v, c, Variants())
		}
	}
	for _, s := range p.PerShape {
		if s.Class != GEMVMemory && s.Class != GEMVCache {
			return fmt.Errorf("kernels: plan has a per-shape variant for %s (only one-token classes have them)", s.Class)
		}
		if _, ok := lookupVariant(s.Variant); !ok {
			return fmt.Errorf("%w: plan variant %q for %s on %dx%d (this CPU runs %v)", ErrUnsupported, s.Variant, s.Class, s.Rows, s.Cols, Variants())
		}
	}
	return nil
}

// Reference model for Estimate: BitNet b1.58 2B4T.
const (
	refLayers = 30
	refVocab  = 128256
	refTokens = 64 // prefill batch of the GEMMLarge timings
)

// refCounts is how many matrices of each ReferenceShapes shape one layer
// has: q and o, k and v, gate and up, down.
var refCounts = [...]int{2, 2, 2, 1}

// Estimate returns decode and prefill tokens per second for the reference
// model (BitNet b1.58 2B4T: 30 layers, vocabulary 128256, the head format measured) from
// the timings of the plan's chosen variants on ReferenceShapes, 0 for
// what the plan did not time. Attention and the float work are left out:
// these are the speeds the kernels allow, for comparing nodes.
func (p Plan) Estimate() (decode, prefill float64) {
	var dec, pre float64
	for i, sh := range ReferenceShapes() {
		g, ok1 := p.Best(GEMVMemory, sh[0], sh[1], 1)
		m, ok2 := p.Best(GEMMLarge, sh[0], sh[1], refTokens)
		if !ok1 {
			dec = -1
		}
		if !ok2 {
			pre = -1
		}
		if dec >= 0 {
			dec += float64(refCounts[i]) * g.NsPerOp
		}
		if pre >= 0 {
			pre += float64(refCounts[i]) * m.NsPerOp
		}
	}
	var head float64
	for _, t := range p.Timings {
		if t.Class == Head && t.Variant == p.Choice[Head] && t.Rows > 0 {
			head = t.NsPerOp * refVocab / float64(t.Rows)
		}
	}
	if dec > 0 && head > 0 {
		decode = 1e9 / (refLayers*dec + head)
	}
	if pre > 0 {
		prefill = 1e9 * refTokens / (refLayers*pre + head)
	}
	return decode, prefill
}
