package kernels

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/mmap"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// ReferenceShapes are the BitLinear shapes (rows x cols) of BitNet b1.58
// 2B4T: q/o, k/v, gate/up, down. Plans are measured on them unless a model
// gives its own.
func ReferenceShapes() [][2]int {
	return [][2]int{{2560, 2560}, {640, 2560}, {6912, 2560}, {2560, 6912}}
}

// MeasureConfig sizes Measure. Zero fields take the defaults.
type MeasureConfig struct {
	// Threads is the engine's thread count (default 1).
	Threads int
	// Shapes are the BitLinear shapes, rows x cols (default ReferenceShapes).
	Shapes [][2]int
	// HeadCols is the head's row length (default the first shape's cols);
	// the head is timed on as many vocabulary rows as ColdBytes holds.
	HeadCols int
	// MinTime is the least time each variant runs per round (default 1ms),
	// Reps the rounds (default 12): short rounds, so that the load of other
	// processes changes little between the variants of one round; each
	// call is timed and the fast decile counts (see timeOps).
	MinTime time.Duration
	Reps    int
	// HeadFormat is the format the head is timed in (default
	// DefaultHeadFormat, the models' default): the fastest variant
	// differs by format.
	HeadFormat HeadFormat
	// ColdBytes is the weight bytes rotated through by the DRAM classes,
	// larger than the last-level cache (default 96 MiB).
	ColdBytes int
	// Classes limits the classes measured (default all).
	Classes []Class
	// Accelerator, when set, is timed too (variant "metal") on the
	// classes it may run: the plan can put them on the GPU.
	Accelerator Accelerator
}

func (c *MeasureConfig) defaults() {
	c.Threads = max(c.Threads, 1)
	if len(c.Shapes) == 0 {
		c.Shapes = ReferenceShapes()
	}
	if c.HeadCols <= 0 {
		c.HeadCols = c.Shapes[0][1]
	}
	if c.MinTime <= 0 {
		c.MinTime = time.Millisecond
	}
	if c.Reps <= 0 {
		c.Reps = 12
	}
	if c.HeadFormat.Bits() == 0 {
		c.HeadFormat = DefaultHeadFormat
	}
	if c.ColdBytes <= 0 {
		c.ColdBytes = 96 << 20
	}
	if len(c.Classes) == 0 {
		c.Classes = Classes()
	}
}

// classTokens is the token count each class is measured at.
var classTokens = [numClasses]int{GEMVMemory: 1, GEMVCache: 1, GEMMSmall: 8, GEMMLarge: 64, Head: 1, Quantize: 64}

// measured returns the variants Measure times for class c: every SIMD
// variant that differs from the others in c (generic too when there is no
// SIMD variant; it never wins where one exists).
func measured(c Class) []*variant {
	var vs []*variant
	for i := range variants {
		v := &variants[i]
		if v.path == Generic && len(variants) > 1 {
			continue
		}
		switch {
		case c == Quantize:
			// Only the quantisation loop differs: one variant of each kind.
			dup := false
			for _, o := range vs {
				dup = dup || o.quant512 == v.quant512
			}
			if dup {
				continue
			}
		case c != GEMVMemory && c != GEMVCache && v.gemvOnly:
			continue
		case c != GEMVMemory && c != GEMVCache && c != Head && v.oneToken:
			continue
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		vs = append(vs, &variants[0])
	}
	return vs
}

// measured is measured(c) and the accelerator's variant where it may run c.
func (cfg MeasureConfig) measured(c Class) []*variant {
	vs := measured(c)
	if cfg.Accelerator != nil && accelClass(c) {
		vs = append(vs, &variant{name: accelVariant, path: Metal})
	}
	return vs
}

// MaxMeasureBytes bounds the 2-bit codes of one shape Measure times (it
// holds two copies, 2-bit and 1.6-bit, of the largest): BitLinear matrices
// of the largest open models take about 220 MB.
const MaxMeasureBytes = 1 << 30

// Measure times the variants of each class on cfg's shapes (see
// MeasureConfig) and returns the timings for Choose, one per class,
// variant and shape. It takes about a second per class on a 2B4T shape
// set; GEMVMemory and Head are timed twice, first and last (see
// keepFaster).
func Measure(ctx context.Context, cfg MeasureConfig) ([]Timing, error) {
	cfg.defaults()
	for _, sh := range cfg.Shapes {
		if sh[0] <= 0 || sh[1] <= 0 || sh[0] > MaxMeasureBytes/max(ternary.PaddedCols(sh[1])/4, 1) {
			return nil, fmt.Errorf("%w: cannot measure a %dx%d matrix (at most %d bytes of codes)", ErrShape, sh[0], sh[1], MaxMeasureBytes)
		}
	}
	engines := map[Variant]*Engine{}
	defer func() {
		for _, e := range engines {
			e.Close()
		}
	}()
	engine := func(v Variant) (*Engine, error) {
		if e, ok := engines[v]; ok {
			return e, nil
		}
		p := Plan{Choice: map[Class]Variant{}, Source: "measure"}
		for _, c := range Classes() {
			p.Choice[c] = v
		}
		opts := []Option{WithThreads(cfg.Threads)}
		if v == accelVariant {
			p = AcceleratedPlan()
			opts = append(opts, WithAccelerator(cfg.Accelerator))
		}
		e, err := New(append(opts, WithPlan(p))...)
		if err != nil {
			return nil, err
		}
		engines[v] = e
		return e, nil
	}
	rng := rand.New(rand.NewPCG(11, 12))
	// One buffer of random codes; cold matrices are views into it.
	maxBytes := cfg.ColdBytes
	for _, sh := range cfg.Shapes {
		maxBytes = max(maxBytes, sh[0]*ternary.PaddedCols(sh[1])/4)
	}
	// On huge pages, as a model's weights are (model.WithHugePages, the
	// default): on Zen 4 the loop shape that streams fastest from 4 KiB
	// pages (one row at a time) streamed 24% slower than four rows side by
	// side from the model's huge pages, so a plan measured on 4 KiB pages
	// picked the slower variant for decode.
	pool := mmap.HugeBytes(maxBytes)
	fillRepeated(pool, func() byte {
		v := rng.IntN(81)
		return byte(v%3 | v/3%3<<2 | v/9%3<<4 | v/27<<6)
	})
	// 1.6-bit rows for the -tq1 variants (any bytes time alike).
	tpool := mmap.HugeBytes(len(pool))
	fillRepeated(tpool, func() byte { return byte(rng.IntN(256)) })
	mmap.HugePages(pool) // whatever did not fault in huge
	mmap.HugePages(tpool)
	// product times class c on every shape.
	product := func(c Class) ([]Timing, error) {
		var out []Timing
		for _, sh := range cfg.Shapes {
			rows, cols := sh[0], sh[1]
			stride := ternary.PaddedCols(cols) / 4
			size := rows * stride
			var ws []*ternary.Matrix
			tsize := rows * ternary.TritStride(stride)
			for off := 0; off+size <= len(pool) && (len(ws) == 0 || c == GEMVMemory); off += size {
				w := &ternary.Matrix{Rows: rows, Cols: cols, Stride: stride, Codes: pool[off : off+size : off+size], Scale: 0.5}
				if c == GEMVMemory || c == GEMVCache {
					w.Trits = tpool[off : off+tsize : off+tsize]
				}
				ws = append(ws, w)
			}
			n := classTokens[c]
			a := randomActivations(rng, n, cols)
			y := make([]float32, n*rows)
			vs := cfg.measured(c)
			i := 0 // shared by the variants: none reads a matrix another left in cache
			ns, err := timeVariants(ctx, cfg, vs, engine, func(e *Engine) func() error {
				mm := e.MatMul
				if c == GEMVCache {
					mm = e.MatMulResident
				}
				return func() error { i++; return mm(y, ws[i%len(ws)], a) }
			}, quantileOf(c))
			if err != nil {
				return nil, fmt.Errorf("kernels: measure %s %dx%d: %w", c, rows, cols, err)
			}
			for j, v := range vs {
				out = append(out, Timing{Class: c, Variant: v.name, Rows: rows, Cols: cols, N: n, NsPerOp: ns[j]})
			}
		}
		return out, nil
	}
	var head func(*Engine, []float32, *Activations) error
	var headRows int
	if slices.Contains(cfg.Classes, Head) {
		head, headRows = headProduct(cfg, pool)
	}
	class := func(c Class) ([]Timing, error) {
		switch c {
		case Head:
			return measureHead(ctx, cfg, engine, head, headRows)
		case Quantize:
			return measureQuantize(ctx, cfg, engine, rng)
		}
		return product(c)
	}
	var out []Timing
	for _, c := range cfg.Classes {
		ts, err := class(c)
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
	}
	// The one-token products from DRAM again, last, each timing keeping
	// the faster of its two passes: on a shared machine a burst of load
	// that takes a core or the memory bus for the second or so of one pass
	// slows the variants unequally (a compute-bound one loses its second
	// core, a bandwidth-bound one its bandwidth), and then the other pass,
	// seconds apart, is the machine's own speed.
	for _, c := range []Class{GEMVMemory, Head} {
		if !slices.Contains(cfg.Classes, c) {
			continue
		}
		again, err := class(c)
		if err != nil {
			return nil, err
		}
		keepFaster(out, again)
	}
	return out, nil
}

// fillRepeated fills b's first MiB with draw's bytes and repeats them over
// the rest: the kernels' time does not depend on the values, and drawing
// each byte of Measure's 192 MB took a second.
func fillRepeated(b []byte, draw func() byte) {
	n := min(len(b), 1<<20)
	for i := range n {
		b[i] = draw()
	}
	for filled := n; filled < len(b); {
		filled += copy(b[filled:], b[:filled])
	}
}

// keepFaster sets each timing of ts to the faster of it and the timing of
// again for the same class, variant and shape.
func keepFaster(ts, again []Timing) {
	type key struct {
		c       Class
		v       Variant
		r, k, n int
	}
	fast := map[key]float64{}
	for _, t := range again {
		fast[key{t.Class, t.Variant, t.Rows, t.Cols, t.N}] = t.NsPerOp
	}
	for i := range ts {
		t := &ts[i]
		if ns, ok := fast[key{t.Class, t.Variant, t.Rows, t.Cols, t.N}]; ok && ns > 0 && (ns < t.NsPerOp || !(t.NsPerOp > 0)) {
			t.NsPerOp = ns
		}
	}
}

// headProduct returns the head Measure times, in cfg.HeadFormat on the
// rows of pool (as many as it holds), as one product of engine e, and its
// row count (0: pool holds no row).
func headProduct(cfg MeasureConfig, pool []byte) (mul func(e *Engine, y []float32, a *Activations) error, rows int) {
	cols := cfg.HeadCols
	var stride int
	bits := cfg.HeadFormat.Bits()
	if bits == 8 {
		stride = ternary.PaddedCols(cols)
	} else {
		stride = ternary.PaddedCols(cols) / ternary.BlockSize * packedBlockBytes(bits)
	}
	rows = len(pool) / stride
	if rows == 0 {
		return nil, 0
	}
	scales := make([]float32, rows)
	for i := range scales {
		scales[i] = 0.01
	}
	if bits == 8 {
		data := make([]int8, rows*stride)
		for i := range data {
			if i%stride < cols {
				data[i] = int8(pool[i]) >> 1 // |w| <= 64: a valid int8 head
			}
		}
		w := &Int8Matrix{Rows: rows, Cols: cols, Stride: stride, Data: data, Scales: scales}
		return func(e *Engine, y []float32, a *Activations) error { return e.MatMulInt8(y, w, a) }, rows
	}
	// Any bytes are valid packed rows.
	w := &PackedMatrix{Rows: rows, Cols: cols, Bits: bits, Stride: stride, Data: pool[:rows*stride], Scales: scales}
	return func(e *Engine, y []float32, a *Activations) error { return e.MatMulPacked(y, w, a) }, rows
}

// measureHead times mul, the head of headProduct (one token): one call
// over all its rows, as a model multiplies its head. Timed in 2 MB calls,
// the one-row variants tied with avx2 at two threads on Zen 4 (0.99-1.04),
// where whole calls had avx2 ahead by 3-7% and so had the model (4%,
// docs/perf.md).
func measureHead(ctx context.Context, cfg MeasureConfig, engine func(Variant) (*Engine, error), mul func(*Engine, []float32, *Activations) error, rows int) ([]Timing, error) {
	if rows == 0 {
		return nil, nil
	}
	rng := rand.New(rand.NewPCG(13, 14))
	a := randomActivations(rng, 1, cfg.HeadCols)
	y := make([]float32, rows)
	vs := cfg.measured(Head)
	ns, err := timeVariants(ctx, cfg, vs, engine, func(e *Engine) func() error {
		return func() error { return mul(e, y, a) }
	}, quantileOf(Head))
	if err != nil {
		return nil, fmt.Errorf("kernels: measure head: %w", err)
	}
	var out []Timing
	for j, v := range vs {
		out = append(out, Timing{Class: Head, Variant: v.name, Rows: rows, Cols: cfg.HeadCols, N: 1, NsPerOp: ns[j]})
	}
	return out, nil
}

// measureQuantize times activation quantisation of 64 tokens of each
// distinct row length.
func measureQuantize(ctx context.Context, cfg MeasureConfig, engine func(Variant) (*Engine, error), rng *rand.Rand) ([]Timing, error) {
	var out []Timing
	seen := map[int]bool{}
	for _, sh := range cfg.Shapes {
		k := sh[1]
		if seen[k] {
			continue
		}
		seen[k] = true
		n := classTokens[Quantize]
		x := make([]float32, n*k)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		a := NewActivations(n, k)
		vs := measured(Quantize)
		ns, err := timeVariants(ctx, cfg, vs, engine, func(e *Engine) func() error {
			return func() error { return e.Quantize(a, x) }
		}, quantileOf(Quantize))
		if err != nil {
			return nil, fmt.Errorf("kernels: measure quantize: %w", err)
		}
		for j, v := range vs {
			out = append(out, Timing{Class: Quantize, Variant: v.name, Rows: n, Cols: k, N: n, NsPerOp: ns[j]})
		}
	}
	return out, nil
}

// timeVariants times op(engine of v) for each variant v with timeOps.
func timeVariants(ctx context.Context, cfg MeasureConfig, vs []*variant, engine func(Variant) (*Engine, error), op func(*Engine) func() error, q float64) ([]float64, error) {
	ops := make([]func() error, len(vs))
	for j, v := range vs {
		e, err := engine(v.name)
		if err != nil {
			return nil, err
		}
		ops[j] = op(e)
	}
	return timeOps(ctx, cfg, ops, q)
}

// timeOps returns the q-quantile of the ns per call of each op over
// cfg.Reps rounds. Each round runs every op (after one warm-up call) for
// at least cfg.MinTime in turn, starting with a different op each round,
// and times every call on its own: on a machine shared with other
// processes an average over a window measures the load as much as the
// kernel, while the fast decile (q = fastDecile) of single calls is the
// speed the kernel has when it runs. Not for one-token products streamed
// from DRAM (GEMVMemory and Head, q = median): there the fast tenth of
// the calls is the machine's best bandwidth of those seconds, which a
// bandwidth-bound variant turns into speed and a compute-bound one does
// not, while a decode pays every call. On Zen 4 at two threads the fast
// decile put the 1.6-bit products at up to 1.09 of the 2-bit ones where
// the model decoded them 1.10x faster (0.91); the median gave 0.87-0.97
// (docs/perf.md).
func timeOps(ctx context.Context, cfg MeasureConfig, ops []func() error, q float64) ([]float64, error) {
	for _, op := range ops {
		if err := op(); err != nil {
			return nil, err
		}
	}
	samples := make([][]float64, len(ops))
	for r := range cfg.Reps {
		for k := range ops {
			j := (k + r) % len(ops)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			start := time.Now()
			for len(samples[j]) == 0 || time.Since(start) < cfg.MinTime {
				t0 := time.Now()
				if err := ops[j](); err != nil {
					return nil, err
				}
				samples[j] = append(samples[j], float64(time.Since(t0).Nanoseconds()))
			}
		}
	}
	out := make([]float64, len(ops))
	for j, s := range samples {
		out[j] = quantile(s, q)
	}
	return out, nil
}

// The quantiles of single-call times Measure reports: the fast decile, and
// the median for GEMVMemory and Head (see timeOps).
const (
	fastDecile = 0.1
	median     = 0.5
)

// quantileOf returns the quantile Measure reports for class c: the median
// for the one-token products that stream their weights from DRAM
// (GEMVMemory, Head), the fast decile for the others (see timeOps).
func quantileOf(c Class) float64 {
	if c == GEMVMemory || c == Head {
		return median
	}
	return fastDecile
}

// quantile returns the q-quantile of x (sorted in place), 0 for no x.
func quantile(x []float64, q float64) float64 {
	if len(x) == 0 {
		return 0
	}
	slices.Sort(x)
	return x[min(int(float64(len(x))*q), len(x)-1)]
}

// randomActivations returns n quantised tokens of k normal features.
func randomActivations(rng *rand.Rand, n, k int) *Activations {
	a := NewActivations(n, k)
	x := make([]float32, n*k)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	_ = a.Quantize(x) // sizes match by construction
	return a
}

// MeasuredVariants returns the variants Measure times for class c, in the
// order it times them (each path's default first): for a GEMV class every
// GEMV tuning, for the others one variant per distinct implementation.
func MeasuredVariants(c Class) []Variant {
	var out []Variant
	for _, v := range measured(c) {
		out = append(out, v.name)
	}
	return out
}

// VariantPlan returns the plan that runs every class on variant v (what
// Measure times); New fails with it where this CPU lacks v.
func VariantPlan(v Variant) Plan {
	p := Plan{Choice: map[Class]Variant{}, Source: "forced"}
	if x, ok := lookupVariant(v); ok {
		p.Forced = x.path
	}
	for _, c := range Classes() {
		p.Choice[c] = v
	}
	return p
}
