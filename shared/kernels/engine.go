package kernels

import (
	"errors"
	"fmt"
	"maps"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// Engine runs the kernels of one path on a pool of worker threads.
// An Engine is safe for concurrent use; Close it to stop its workers.
type Engine struct {
	path    Path // forced path, "" when the plan decides
	plan    *Plan
	threads int
	cls     [numClasses]*variant // the plan, resolved once (CPU variants)
	// shape holds the per-shape one-token variants: the plan's, and those
	// AdoptShapes adds (copy on write under shapeMu).
	shape   atomic.Pointer[map[shapeKey]*variant]
	shapeMu sync.Mutex
	acc     Accelerator      // WithAccelerator; nil without
	onAcc   [numClasses]bool // classes the plan runs on acc
	pool    *pool
	bufs    sync.Pool // *prepared scratch for impl.prepare
	batches sync.Pool // *batch scratch for MatMuls
}

// Option configures an Engine.
type Option func(*Engine)

// WithPath forces a kernel path for every operation class (its default
// variant); New fails if the CPU lacks it. The empty path means no force:
// the plan (WithPlan, else StaticPlan) decides.
func WithPath(p Path) Option { return func(e *Engine) { e.path = p } }

// WithPlan runs each operation class on the variant p chooses (see
// LoadPlan); a forced path (WithPath) overrides it.
func WithPlan(p Plan) Option { return func(e *Engine) { e.plan = &p } }

// WithThreads sets the number of worker threads (default GOMAXPROCS; values
// below 1 mean the default).
func WithThreads(n int) Option { return func(e *Engine) { e.threads = n } }

// New returns an Engine on the best path of this CPU unless an option says
// otherwise, and starts its workers.
func New(opts ...Option) (*Engine, error) {
	e := &Engine{}
	for _, o := range opts {
		o(e)
	}
	var plan Plan
	switch {
	case e.path == Metal:
		if e.acc == nil || e.acc.Path() != Metal {
			return nil, fmt.Errorf("%w: %q needs a GPU (package metal) and none was opened", ErrUnsupported, Metal)
		}
		plan = AcceleratedPlan()
	case e.path != "":
		if _, err := ParsePath(string(e.path)); err != nil {
			return nil, err
		}
		if !IsSupported(e.path) {
			return nil, unsupported(e.path)
		}
		plan = ForcedPlan(e.path)
	case e.plan != nil:
		plan = *e.plan
	default:
		plan = StaticPlan()
	}
	if err := plan.validate(e.acc != nil); err != nil {
		return nil, err
	}
	e.plan = &plan
	for _, c := range Classes() {
		e.cls[c], _ = lookupVariant(plan.Choice[c])
	}
	shape := map[shapeKey]*variant{}
	for _, s := range plan.PerShape {
		shape[shapeKey{s.Class, s.Rows, s.Cols}], _ = lookupVariant(s.Variant)
	}
	e.shape.Store(&shape)
	if err := e.resolveAccel(plan); err != nil {
		return nil, err
	}
	if e.threads < 1 {
		e.threads = runtime.GOMAXPROCS(0)
	}
	if e.threads > maxThreads {
		return nil, fmt.Errorf("kernels: %d threads, want at most %d", e.threads, maxThreads)
	}
	// The calling goroutine is one of the threads.
	e.pool = newPool(e.threads - 1)
	// An engine dropped without Close still stops its workers, which
	// reference the pool but not the engine.
	runtime.AddCleanup(e, (*pool).close, e.pool)
	return e, nil
}

// Path returns the forced kernel path, or else the widest path this CPU
// runs (what the node offers; the plan picks among its variants per class).
func (e *Engine) Path() Path {
	if e.path != "" {
		return e.path
	}
	return Best()
}

// Floats returns the float loops of the engine's path (no SIMD when
// generic is forced).
func (e *Engine) Floats() Floats { return FloatsFor(e.path) }

// ReadsTrits reports whether one-token products (from memory, or from
// cache when resident) run a variant that reads ternary.Matrix.Trits: then
// a model should PackTrits its matrices.
func (e *Engine) ReadsTrits(resident bool) bool {
	c := classOf(1, resident)
	if e.cls[c].tq1 {
		return true
	}
	for k, v := range *e.shape.Load() {
		if k.c == c && v.tq1 {
			return true
		}
	}
	return false
}

// ReadsTritsFor reports whether one-token products on a rows x cols matrix
// run a variant that reads ternary.Matrix.Trits (the plan may choose per
// shape): then a model should PackTrits that matrix.
func (e *Engine) ReadsTritsFor(resident bool, rows, cols int) bool {
	return e.variantFor(classOf(1, resident), rows, cols).tq1
}

// shapeKey is a one-token class and a weight shape.
type shapeKey struct {
	c          Class
	rows, cols int
}

// variantFor returns the variant of class c for a rows x cols matrix.
func (e *Engine) variantFor(c Class, rows, cols int) *variant {
	if v, ok := (*e.shape.Load())[shapeKey{c, rows, cols}]; ok {
		return v
	}
	return e.cls[c]
}

// AdoptShapes runs the one-token products of each of shapes (rows x cols)
// on the variant p chooses for that shape: p is a plan measured on a
// model's own shapes (LoadPlan with MeasureConfig.Shapes), and the engine's
// plan, measured on other shapes (a serving node's reference shapes), keeps
// every other shape and class. A forced path ignores it; classes on the
// accelerator stay there. Safe while products run: a product already
// started keeps the variant it began with.
func (e *Engine) AdoptShapes(p Plan, shapes [][2]int) error {
	if e.path != "" {
		return nil
	}
	if err := p.validate(e.acc != nil); err != nil {
		return err
	}
	e.shapeMu.Lock()
	defer e.shapeMu.Unlock()
	next := maps.Clone(*e.shape.Load())
	for _, c := range []Class{GEMVMemory, GEMVCache} {
		if e.onAcc[c] {
			continue
		}
		for _, sh := range shapes {
			if v, ok := lookupVariant(p.VariantFor(c, sh[0], sh[1])); ok {
				next[shapeKey{c, sh[0], sh[1]}] = v
			}
		}
	}
	e.shape.Store(&next)
	return nil
}

// Forced reports whether a path was forced (WithPath).
func (e *Engine) Forced() bool { return e.path != "" }

// Plan returns the plan the engine runs.
func (e *Engine) Plan() Plan { return *e.plan }

// Variant returns the variant the engine runs class c on.
func (e *Engine) Variant(c Class) Variant { return e.cls[c].name }

// Threads returns the number of worker threads (1 for a nil engine).
func (e *Engine) Threads() int {
	if e == nil {
		return 1
	}
	return e.threads
}

// Hold keeps the worker threads polling for work, instead of parking after
// a short idle spell, until the matching Release: a caller about to issue
// a run of products with float work between them (a model's forward pass)
// holds the engine for the run, so that no product waits for a worker to
// wake. Holds nest and may come from several goroutines; every Hold needs
// one Release. A nil or one-thread engine ignores both.
func (e *Engine) Hold() {
	if e != nil && e.pool != nil && e.threads > 1 {
		e.pool.holds.Add(1)
	}
}

// Release ends one Hold.
func (e *Engine) Release() {
	if e != nil && e.pool != nil && e.threads > 1 {
		e.pool.holds.Add(-1)
	}
}

// Close stops the worker threads and waits for them. Calls after Close still
// work, on the calling goroutine only.
func (e *Engine) Close() {
	if e != nil && e.pool != nil {
		e.pool.close()
	}
}

// maxThreads bounds WithThreads: more workers than this is a mistake.
const maxThreads = 4096

// errNilEngine reports a method call on a nil or zero Engine.
var errNilEngine = errors.New("kernels: nil engine (use kernels.New)")

// MatMul computes y[t*w.Rows+r] = dot(T[r], q[t]) * (w.Scale / a.Scale[t]) for
// every token t < a.N and row r < w.Rows. The int32 dot is exact; the float
// scaling is the same on every path, so all paths agree bit for bit. One
// token runs as GEMVMemory (weights streamed from DRAM); see MatMulResident.
func (e *Engine) MatMul(y []float32, w *ternary.Matrix, a *Activations) error {
	return e.matMul(y, w, a, false)
}

// MatMulResident is MatMul for weights that stay in cache between products
// (a model smaller than the caches): one token runs as GEMVCache.
func (e *Engine) MatMulResident(y []float32, w *ternary.Matrix, a *Activations) error {
	return e.matMul(y, w, a, true)
}

func (e *Engine) matMul(y []float32, w *ternary.Matrix, a *Activations, resident bool) error {
	if err := e.checkMatMul(y, w, a); err != nil {
		return err
	}
	if a.N == 0 {
		return nil
	}
	if e.onAcc[classOf(a.N, resident)] {
		err := e.acc.MatMulMany([][]float32{y}, []*ternary.Matrix{w}, a)
		if !errors.Is(err, ErrDeclined) {
			return err
		}
	}
	return e.matMulCPU(y, w, a, resident)
}

// checkMatMul validates MatMul's operands.
func (e *Engine) checkMatMul(y []float32, w *ternary.Matrix, a *Activations) error {
	if e == nil || e.pool == nil {
		return errNilEngine
	}
	if w == nil || a == nil {
		return fmt.Errorf("%w: nil operand (weights %t, activations %t)", ErrShape, w != nil, a != nil)
	}
	if err := checkActivations(a); err != nil {
		return err
	}
	if w.Cols != a.K || w.Rows <= 0 || w.Stride != a.Stride/4 || len(w.Codes) < w.Rows*w.Stride {
		return fmt.Errorf("%w: weights %dx%d (stride %d, %d bytes), activations %dx%d",
			ErrShape, w.Rows, w.Cols, w.Stride, len(w.Codes), a.N, a.K)
	}
	if len(y) != a.N*w.Rows {
		return fmt.Errorf("%w: output has %d floats, want %d tokens x %d rows", ErrShape, len(y), a.N, w.Rows)
	}
	return nil
}

// matMulCPU runs a checked product with a.N > 0 on the CPU variant of its class.
func (e *Engine) matMulCPU(y []float32, w *ternary.Matrix, a *Activations, resident bool) error {
	v := e.variantFor(classOf(a.N, resident), w.Rows, w.Cols)
	im := &v.im
	if readsTrits(v, w, a) {
		f := im.matMulTrits
		if chunks, per := e.split(w.Rows, 1, len(w.Trits)/w.Rows); chunks <= 1 {
			f(y, w, a, 0, w.Rows)
		} else {
			e.pool.do(chunks, e.threads-1, func(c int) { f(y, w, a, c*per, min((c+1)*per, w.Rows)) })
		}
		return nil
	}
	ap, pp := e.prepare(im, a)
	if chunks, per := e.split(w.Rows, a.N, w.Stride); chunks <= 1 {
		im.matMul(y, w, ap, 0, w.Rows)
	} else {
		e.pool.do(chunks, e.threads-1, func(c int) { im.matMul(y, w, ap, c*per, min((c+1)*per, w.Rows)) })
	}
	e.unprepare(pp)
	return nil
}

// prepare returns a as im's kernels read it: a itself, or a copy whose Q
// im.prepare rearranged into pooled scratch (pp, for unprepare).
func (e *Engine) prepare(im *impl, a *Activations) (*Activations, *prepared) {
	if im.prepare == nil {
		return a, nil
	}
	pp := e.prepared()
	pp.a = *a
	pp.a.Q = im.prepare(pp.buf, a)
	if &pp.a.Q[0] != &a.Q[0] { // keep the scratch, never the caller's buffer
		pp.buf = pp.a.Q
	}
	return &pp.a, pp
}

// unprepare returns prepare's scratch (nil: none) to the pool.
func (e *Engine) unprepare(pp *prepared) {
	if pp != nil {
		pp.a = Activations{Q: pp.a.Q[:0]} // drop the caller's slices
		e.bufs.Put(pp)
	}
}

// fusable reports whether MatMuls may run ws in one hand-off to the pool:
// several matrices on a multi-thread engine, all on the CPU with the same
// variant (one activation layout) and none reading the 1.6-bit layout.
func (e *Engine) fusable(ws []*ternary.Matrix, a *Activations, resident bool) bool {
	if e == nil || e.pool == nil || e.threads == 1 || len(ws) < 2 || a == nil || a.N == 0 {
		return false
	}
	c := classOf(a.N, resident)
	if e.onAcc[c] {
		return false
	}
	var v0 *variant
	for _, w := range ws {
		if w == nil {
			return false
		}
		v := e.variantFor(c, w.Rows, w.Cols)
		if v0 == nil {
			v0 = v
		}
		if v != v0 {
			return false
		}
	}
	return true
}

// readsTrits reports whether v's one-token product on w reads w.Trits.
func readsTrits(v *variant, w *ternary.Matrix, a *Activations) bool {
	return v.tq1 && a.N == 1 && w.Trits != nil && len(w.Trits) == w.Rows*ternary.TritStride(w.Stride)
}

// matMulsFused runs checked products that fusable accepted: every matrix
// is cut into chunks as MatMul would cut it alone, and the pool claims the
// chunks of all of them in order (one wake-up and one tail for q, k and v).
func (e *Engine) matMulsFused(ys [][]float32, ws []*ternary.Matrix, a *Activations, resident bool) {
	v := e.variantFor(classOf(a.N, resident), ws[0].Rows, ws[0].Cols)
	im := &v.im
	ap, pp := e.prepare(im, a)
	// The workers see copies of the slices (pooled scratch), so that the
	// caller's, often on its stack, do not escape.
	b, _ := e.batches.Get().(*batch)
	if b == nil {
		b = new(batch)
	}
	b.ys, b.ws = append(b.ys[:0], ys...), append(b.ws[:0], ws...)
	b.first, b.per, b.trits = b.first[:0], b.per[:0], b.trits[:0]
	total := 0
	for _, w := range ws {
		rowBytes, trits := w.Stride, readsTrits(v, w, a)
		if trits {
			rowBytes = len(w.Trits) / w.Rows
		}
		chunks, per := e.split(w.Rows, a.N, rowBytes)
		b.first, b.per, b.trits = append(b.first, total), append(b.per, per), append(b.trits, trits)
		total += chunks
	}
	e.pool.do(total, e.threads-1, func(c int) {
		i := len(b.ws) - 1
		for i > 0 && c < b.first[i] {
			i--
		}
		w, per := b.ws[i], b.per[i]
		r0 := (c - b.first[i]) * per
		if b.trits[i] { // the 1.6-bit kernels take q as it is
			im.matMulTrits(b.ys[i], w, a, r0, min(r0+per, w.Rows))
			return
		}
		im.matMul(b.ys[i], w, ap, r0, min(r0+per, w.Rows))
	})
	clear(b.ys)
	clear(b.ws)
	e.batches.Put(b)
	e.unprepare(pp)
}

// prepared is pooled scratch for activations rearranged by impl.prepare, so
// that a product allocates nothing when it runs on one thread.
type prepared struct {
	a   Activations
	buf []int8
}

func (e *Engine) prepared() *prepared {
	if p, ok := e.bufs.Get().(*prepared); ok {
		return p
	}
	return new(prepared)
}

// checkActivations validates the invariants of a that the kernels rely on.
func checkActivations(a *Activations) error {
	if a.N < 0 || a.K <= 0 || a.Stride != ternary.PaddedCols(a.K) || len(a.Q) < a.N*a.Stride ||
		len(a.Scale) < a.N || len(a.Sum) < a.N {
		return fmt.Errorf("%w: activations %dx%d with stride %d, %d q, %d scales, %d sums (use NewActivations/Reset)",
			ErrShape, a.N, a.K, a.Stride, len(a.Q), len(a.Scale), len(a.Sum))
	}
	return nil
}

// rowTile is the row granularity of chunks: a multiple of every SIMD row tile.
const rowTile = 8

// split splits [0, rows) into chunks of per rows (a multiple of rowTile)
// for the engine's threads. rowBytes (weight bytes per row) and n (tokens)
// size the chunks so that small products are not split into pieces cheaper
// than a wake-up; chunks <= 1 means "run inline".
func (e *Engine) split(rows, n, rowBytes int) (chunks, per int) {
	const minWork = 64 << 10 // bytes x tokens of work below which a chunk is not worth a thread
	work := rows * rowBytes * max(n, 1)
	chunks = min(e.threads*4, work/minWork, (rows+rowTile-1)/rowTile)
	if e.threads == 1 || chunks <= 1 {
		return 1, rows
	}
	per = (rows + chunks - 1) / chunks
	per = (per + rowTile - 1) / rowTile * rowTile
	return (rows + per - 1) / per, per
}

// matMulGeneric computes rows [r0, r1) of y for every token.
func matMulGeneric(y []float32, w *ternary.Matrix, a *Activations, r0, r1 int) {
	for t := 0; t < a.N; t++ {
		q := a.Q[t*a.Stride : (t+1)*a.Stride]
		f := w.Scale / a.Scale[t]
		for r := r0; r < r1; r++ {
			d := dotGeneric(w.Codes[r*w.Stride:(r+1)*w.Stride], q) - a.Sum[t]
			y[t*w.Rows+r] = float32(d) * f
		}
	}
}

// dotGeneric returns dot(codes, q) over len(q) weights in the ternary layout.
func dotGeneric(codes []byte, q []int8) int32 {
	var s int32
	for g := 0; g < len(q)/ternary.GroupSize; g++ {
		c := codes[g*ternary.GroupBytes : (g+1)*ternary.GroupBytes]
		x := q[g*ternary.GroupSize : (g+1)*ternary.GroupSize]
		for m := 0; m < ternary.GroupBytes; m++ {
			b := c[m]
			s += int32(b&3)*int32(x[m]) + int32(b>>2&3)*int32(x[32+m]) +
				int32(b>>4&3)*int32(x[64+m]) + int32(b>>6)*int32(x[96+m])
		}
	}
	return s
}
