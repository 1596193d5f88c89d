package kernels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// zen4Timings are the recorded figures of issue 11 (AMD EPYC Zen 4, family
// 25 model 17, one thread): cold 6912x2560 GEMV at 14.0 GB/s with avx512
// and 20.4 GB/s with avx2; n = 64 GEMM at 375 GOP/s with avx512, and avx2
// prefill at 52.3 against 78.0 tok/s (so about 251 GOP/s).
func zen4Timings() []Timing {
	bytes := 6912.0 * 2560 / 4
	ops := 2 * 6912.0 * 2560 * 64
	return []Timing{
		{Class: GEMVMemory, Variant: "avx512", Rows: 6912, Cols: 2560, N: 1, NsPerOp: bytes / 14.0},
		{Class: GEMVMemory, Variant: "avx2", Rows: 6912, Cols: 2560, N: 1, NsPerOp: bytes / 20.4},
		{Class: GEMMLarge, Variant: "avx512", Rows: 6912, Cols: 2560, N: 64, NsPerOp: ops / 375},
		{Class: GEMMLarge, Variant: "avx2", Rows: 6912, Cols: 2560, N: 64, NsPerOp: ops / (375 * 52.3 / 78.0)},
	}
}

func TestChooseZen4(t *testing.T) {
	fallback := map[Class]Variant{GEMVMemory: "avx512", GEMMLarge: "avx512", Head: "avx512"}
	got := Choose(zen4Timings(), fallback)
	for c, want := range map[Class]Variant{GEMVMemory: "avx2", GEMMLarge: "avx512", Head: "avx512"} {
		if got[c] != want {
			t.Errorf("Zen 4 table: %s got %s, want %s", c, got[c], want)
		}
	}
}

func TestChoose(t *testing.T) {
	ts := []Timing{
		// a wins one shape, b the total.
		{Class: GEMMSmall, Variant: "a", Rows: 1, Cols: 1, NsPerOp: 10},
		{Class: GEMMSmall, Variant: "a", Rows: 2, Cols: 1, NsPerOp: 30},
		{Class: GEMMSmall, Variant: "b", Rows: 1, Cols: 1, NsPerOp: 12},
		{Class: GEMMSmall, Variant: "b", Rows: 2, Cols: 1, NsPerOp: 20},
		// c is fastest but was measured on one shape of two: not eligible.
		{Class: GEMMSmall, Variant: "c", Rows: 1, Cols: 1, NsPerOp: 1},
		// Ties keep the first; zero and NaN timings are ignored.
		{Class: Quantize, Variant: "x", NsPerOp: 5},
		{Class: Quantize, Variant: "y", NsPerOp: 5},
		{Class: Head, Variant: "z", NsPerOp: 0},
	}
	got := Choose(ts, map[Class]Variant{Head: "h"})
	want := map[Class]Variant{GEMMSmall: "b", Quantize: "x", Head: "h"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for c, v := range want {
		if got[c] != v {
			t.Errorf("%s: got %s, want %s", c, got[c], v)
		}
	}
}

// TestChooseTrits: the 1.6-bit variants win only by being faster (no margin).
func TestChooseTrits(t *testing.T) {
	// Two shapes per variant; totals are what count.
	timings := func(c Class, nsByVariant map[Variant]float64) []Timing {
		var ts []Timing
		for _, v := range []Variant{"avx512y", "avx512", "avx512-tq1", "avx512y-tq1"} {
			ns, ok := nsByVariant[v]
			if !ok {
				continue
			}
			ts = append(ts,
				Timing{Class: c, Variant: v, Rows: 2560, Cols: 2560, N: 1, NsPerOp: ns / 4},
				Timing{Class: c, Variant: v, Rows: 6912, Cols: 2560, N: 1, NsPerOp: ns * 3 / 4})
		}
		return ts
	}
	tests := []struct {
		name  string
		class Class
		ns    map[Variant]float64
		want  Variant
	}{
		{"trits faster", GEMVMemory, map[Variant]float64{"avx512y": 100, "avx512-tq1": 90}, "avx512-tq1"},
		{"trits 1% slower", GEMVMemory, map[Variant]float64{"avx512y": 100, "avx512-tq1": 101}, "avx512y"},
		{"trits 4% slower", GEMVMemory, map[Variant]float64{"avx512y": 100, "avx512-tq1": 104}, "avx512y"},
		{"fastest trits variant", GEMVMemory, map[Variant]float64{"avx512y": 100, "avx512": 120, "avx512y-tq1": 99.5, "avx512-tq1": 99}, "avx512-tq1"},
		{"no trits variant", GEMVMemory, map[Variant]float64{"avx512y": 101, "avx512": 100}, "avx512"},
		{"cache-resident: fastest only", GEMVCache, map[Variant]float64{"avx512y": 100, "avx512-tq1": 101}, "avx512y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Choose(timings(tt.class, tt.ns), StaticPlan().Choice)[tt.class]
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestKeepFaster(t *testing.T) {
	ts := []Timing{
		{Class: GEMVMemory, Variant: "a", Rows: 2, Cols: 4, N: 1, NsPerOp: 100},
		{Class: GEMVMemory, Variant: "b", Rows: 2, Cols: 4, N: 1, NsPerOp: 100},
		{Class: GEMVMemory, Variant: "a", Rows: 4, Cols: 4, N: 1, NsPerOp: 100},
		{Class: GEMVCache, Variant: "a", Rows: 2, Cols: 4, N: 1, NsPerOp: 100},
		{Class: GEMVMemory, Variant: "c", Rows: 2, Cols: 4, N: 1, NsPerOp: 0},
	}
	again := []Timing{
		{Class: GEMVMemory, Variant: "a", Rows: 2, Cols: 4, N: 1, NsPerOp: 80},  // faster: kept
		{Class: GEMVMemory, Variant: "b", Rows: 2, Cols: 4, N: 1, NsPerOp: 120}, // slower: not
		{Class: GEMVMemory, Variant: "a", Rows: 4, Cols: 4, N: 1, NsPerOp: 0},   // no timing: not
		{Class: GEMVMemory, Variant: "a", Rows: 4, Cols: 8, N: 1, NsPerOp: 1},   // another shape: not added
		{Class: GEMVMemory, Variant: "c", Rows: 2, Cols: 4, N: 1, NsPerOp: 90},  // replaces a missing timing
	}
	keepFaster(ts, again)
	want := []float64{80, 100, 100, 100, 90}
	if len(ts) != len(want) {
		t.Fatalf("got %d timings, want %d", len(ts), len(want))
	}
	for i, w := range want {
		if ts[i].NsPerOp != w {
			t.Errorf("timing %d (%s %s %dx%d): got %v ns, want %v", i, ts[i].Class, ts[i].Variant, ts[i].Rows, ts[i].Cols, ts[i].NsPerOp, w)
		}
	}
}

func TestQuantile(t *testing.T) {
	x := []float64{9, 1, 8, 2, 7, 3, 6, 4, 5, 10}
	tests := []struct {
		name string
		x    []float64
		q    float64
		want float64
	}{
		{"fast decile", x, fastDecile, 2},
		{"median", x, median, 6},
		{"one sample", []float64{3}, median, 3},
		{"no samples", nil, fastDecile, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := quantile(slices.Clone(tt.x), tt.q); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	for _, c := range Classes() {
		want := fastDecile
		if c == GEMVMemory || c == Head {
			want = median
		}
		if got := quantileOf(c); got != want {
			t.Errorf("quantileOf(%s): got %v, want %v", c, got, want)
		}
	}
}

func TestFillRepeated(t *testing.T) {
	for _, n := range []int{0, 5, 1 << 20, 3<<20 + 5} {
		b := make([]byte, n)
		next := byte(0)
		fillRepeated(b, func() byte { next += 7; return next })
		for i := range b {
			if want := byte(7 * (i%(1<<20) + 1)); b[i] != want {
				t.Fatalf("%d bytes: byte %d got %d, want %d", n, i, b[i], want)
			}
		}
	}
}

func TestClassNames(t *testing.T) {
	for _, c := range Classes() {
		b, err := c.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Class
		if err := back.UnmarshalText(b); err != nil || back != c {
			t.Errorf("class %d: text %q parsed back as %d, %v", c, b, back, err)
		}
	}
	if _, err := ParseClass("gemv"); err == nil {
		t.Error(`ParseClass("gemv"): got nil error, want one`)
	}
	for n, want := range map[int]Class{1: GEMVMemory, 2: GEMMSmall, 16: GEMMSmall, 17: GEMMLarge} {
		if got := classOf(n, false); got != want {
			t.Errorf("classOf(%d) = %s, want %s", n, got, want)
		}
	}
	if got := classOf(1, true); got != GEMVCache {
		t.Errorf("classOf(1, resident) = %s, want gemv_cache", got)
	}
}

func TestStaticAndForcedPlans(t *testing.T) {
	e, err := New(WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Plan().Source != "static" || e.Forced() {
		t.Errorf("New(): plan %v forced %t, want static and not forced", e.Plan(), e.Forced())
	}
	best, _ := defaultVariant(Best())
	for _, c := range Classes() {
		if e.Variant(c) != best.name {
			t.Errorf("static plan: %s on %s, want %s", c, e.Variant(c), best.name)
		}
	}
	g, err := New(WithPath(Generic), WithThreads(1), WithPlan(e.Plan()))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, c := range Classes() {
		if g.Variant(c) != Variant(Generic) {
			t.Errorf("forced generic: %s on %s", c, g.Variant(c))
		}
	}
	if g.cls[Quantize].quant512 {
		t.Error("forced generic quantises with AVX-512")
	}
	if _, err := New(WithPlan(Plan{Choice: map[Class]Variant{GEMVMemory: "sse9"}})); err == nil {
		t.Error("New with a plan naming an unknown variant: got nil error")
	}
}

func TestLoadPlan(t *testing.T) {
	dir := t.TempDir()
	cfg := PlanConfig{Dir: dir, Measure: MeasureConfig{
		Threads: 2, Shapes: [][2]int{{64, 512}, {32, 300}}, MinTime: 50 * time.Microsecond, Reps: 1, ColdBytes: 1 << 20,
	}}
	ctx := context.Background()
	p, err := LoadPlan(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.Source != "measured" || len(p.Timings) == 0 || p.Key == "" {
		t.Fatalf("first LoadPlan: source %q, %d timings, key %q; want a measured plan", p.Source, len(p.Timings), p.Key)
	}
	if err := p.validate(false); err != nil {
		t.Fatal(err)
	}
	// One timing per class, variant and shape (GEMVMemory's two passes
	// merged), every class measured.
	seen := map[string]bool{}
	classes := map[Class]bool{}
	for _, tm := range p.Timings {
		k := fmt.Sprintf("%s %s %dx%d n%d", tm.Class, tm.Variant, tm.Rows, tm.Cols, tm.N)
		if seen[k] {
			t.Errorf("timing %s: got it twice, want once", k)
		}
		seen[k] = true
		classes[tm.Class] = true
	}
	if len(classes) != len(Classes()) {
		t.Errorf("timings of %d classes, want %d", len(classes), len(Classes()))
	}
	// The choice is Choose of the timings: the least total per class.
	want := Choose(p.Timings, StaticPlan().Choice)
	for _, c := range Classes() {
		if p.Choice[c] != want[c] {
			t.Errorf("%s: got %s, want %s", c, p.Choice[c], want[c])
		}
	}
	c, err := LoadPlan(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != "cache" || c.Key != p.Key {
		t.Errorf("second LoadPlan: source %q key %q, want cache %q", c.Source, c.Key, p.Key)
	}
	cfg.Mode = PlanRefresh
	if r, err := LoadPlan(ctx, cfg); err != nil || r.Source != "measured" {
		t.Errorf("refresh: got source %q, %v; want measured", r.Source, err)
	}
	// A corrupt cache is measured again, not an error.
	if err := os.WriteFile(filepath.Join(dir, p.Key+".json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Mode = PlanAuto
	if r, err := LoadPlan(ctx, cfg); err != nil || r.Source != "measured" {
		t.Errorf("corrupt cache: got source %q, %v; want measured", r.Source, err)
	}
	cfg.Mode = PlanStatic
	if s, err := LoadPlan(ctx, cfg); err != nil || s.Source != "static" {
		t.Errorf("static: got %q, %v", s.Source, err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back Plan
	if err := json.Unmarshal(b, &back); err != nil || back.Choice[GEMMLarge] != p.Choice[GEMMLarge] {
		t.Errorf("plan JSON round trip: %v, %s", err, b)
	}
	e, err := New(WithPlan(p), WithThreads(2))
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	// Shapes from a model's header are measured only within bounds: a
	// mistyped or hostile config cannot make the planner allocate them.
	cfg.Mode = PlanAuto
	for _, sh := range [][2]int{{1 << 24, 1 << 24}, {0, 512}, {64, -1}, {MaxMeasureBytes/128 + 1, 512}} {
		cfg.Measure.Shapes = [][2]int{sh}
		if _, err := LoadPlan(ctx, cfg); !errors.Is(err, ErrShape) {
			t.Errorf("shape %v: got %v, want ErrShape", sh, err)
		}
	}
}

func TestParsePlanMode(t *testing.T) {
	for in, want := range map[string]PlanMode{"": PlanAuto, "auto": PlanAuto, " Refresh": PlanRefresh, "static": PlanStatic} {
		if got, err := ParsePlanMode(in); err != nil || got != want {
			t.Errorf("ParsePlanMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParsePlanMode("fast"); err == nil {
		t.Error(`ParsePlanMode("fast"): got nil error`)
	}
}

func TestEstimate(t *testing.T) {
	p := Plan{Choice: map[Class]Variant{GEMVMemory: "a", GEMMLarge: "a", Head: "a"}}
	if d, pf := p.Estimate(); d != 0 || pf != 0 {
		t.Errorf("no timings: got %v, %v; want 0, 0", d, pf)
	}
	for _, sh := range ReferenceShapes() {
		p.Timings = append(p.Timings,
			Timing{Class: GEMVMemory, Variant: "a", Rows: sh[0], Cols: sh[1], N: 1, NsPerOp: 1000},
			Timing{Class: GEMVMemory, Variant: "b", Rows: sh[0], Cols: sh[1], N: 1, NsPerOp: 1},
			Timing{Class: GEMMLarge, Variant: "a", Rows: sh[0], Cols: sh[1], N: 64, NsPerOp: 64000})
	}
	p.Timings = append(p.Timings, Timing{Class: Head, Variant: "a", Rows: refVocab / 2, Cols: 2560, N: 1, NsPerOp: 5000})
	// decode: 30 layers x 7 matrices x 1 us + 10 us of head.
	d, pf := p.Estimate()
	if want := 1e9 / (30*7*1000 + 10000); math.Abs(d-want) > 1e-6 {
		t.Errorf("decode: got %v, want %v", d, want)
	}
	if want := 64e9 / (30*7*64000 + 10000); math.Abs(pf-want) > 1e-6 {
		t.Errorf("prefill: got %v, want %v", pf, want)
	}
}

// zen4ShapeTimings are cold GEMV figures of this branch's Zen 4 sweeps (one
// thread, ns; docs/perf.md).
func zen4ShapeTimings() []Timing {
	return []Timing{
		// 6912-wide rows: one row at a time streams 1.36x faster.
		{Class: GEMVMemory, Variant: "avx512y", Rows: 2560, Cols: 6912, N: 1, NsPerOp: 354736},
		{Class: GEMVMemory, Variant: "avx512y-r1", Rows: 2560, Cols: 6912, N: 1, NsPerOp: 260676},
		// The choice is fastest: nothing to override.
		{Class: GEMVMemory, Variant: "avx512y", Rows: 6912, Cols: 2560, N: 1, NsPerOp: 172025},
		{Class: GEMVMemory, Variant: "avx512y-r1", Rows: 6912, Cols: 2560, N: 1, NsPerOp: 192245},
		// 11% faster: within the noise (ShapeMargin), no override.
		{Class: GEMVMemory, Variant: "avx512y", Rows: 2560, Cols: 2560, N: 1, NsPerOp: 111000},
		{Class: GEMVMemory, Variant: "avx2", Rows: 2560, Cols: 2560, N: 1, NsPerOp: 100000},
		// Batched classes never get one; the accelerator never does.
		{Class: GEMMSmall, Variant: "avx2", Rows: 8, Cols: 8, N: 8, NsPerOp: 1},
		{Class: GEMMSmall, Variant: "avx512y", Rows: 8, Cols: 8, N: 8, NsPerOp: 10},
		{Class: GEMVMemory, Variant: accelVariant, Rows: 2560, Cols: 2560, N: 1, NsPerOp: 1},
	}
}

func TestChooseShapes(t *testing.T) {
	ts := zen4ShapeTimings()
	choice := map[Class]Variant{GEMVMemory: "avx512y", GEMMSmall: "avx512y"}
	got := ChooseShapes(ts, choice)
	want := []ShapeChoice{{Class: GEMVMemory, Rows: 2560, Cols: 6912, Variant: "avx512y-r1"}}
	if len(got) != len(want) || got[0] != want[0] {
		t.Fatalf("got %v, want %v", got, want)
	}
	p := Plan{Choice: StaticPlan().Choice, PerShape: []ShapeChoice{{Class: GEMVMemory, Rows: 64, Cols: 512, Variant: "generic"}}}
	if got := p.VariantFor(GEMVMemory, 64, 512); got != "generic" {
		t.Errorf("VariantFor the per-shape shape: got %s, want generic", got)
	}
	if got, want := p.VariantFor(GEMVMemory, 64, 256), p.Choice[GEMVMemory]; got != want {
		t.Errorf("VariantFor another shape: got %s, want %s", got, want)
	}
	e, err := New(WithPlan(p), WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got := e.variantFor(GEMVMemory, 64, 512).name; got != "generic" {
		t.Errorf("engine: per-shape variant got %s, want generic", got)
	}
	if got, want := e.variantFor(GEMVCache, 64, 512).name, p.Choice[GEMVCache]; got != want {
		t.Errorf("engine: other class got %s, want %s", got, want)
	}
	for _, bad := range []ShapeChoice{{Class: GEMVMemory, Rows: 1, Cols: 1, Variant: "sse9"}, {Class: GEMMLarge, Rows: 1, Cols: 1, Variant: "generic"}} {
		p.PerShape = []ShapeChoice{bad}
		if _, err := New(WithPlan(p)); err == nil {
			t.Errorf("New with per-shape %v: got nil error", bad)
		}
	}
}

// TestAdoptShapes: a plan measured on a model's shapes decides those shapes'
// one-token products, the engine's own plan every other shape, and products
// running meanwhile see one variant or the other (run with -race).
func TestAdoptShapes(t *testing.T) {
	e, err := New(WithPlan(StaticPlan()), WithThreads(2))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	model := Plan{Choice: maps.Clone(StaticPlan().Choice)}
	model.Choice[GEMVMemory] = "generic-tq1"
	model.PerShape = []ShapeChoice{{Class: GEMVCache, Rows: 64, Cols: 512, Variant: "generic"}}

	rng := rand.New(rand.NewPCG(5, 6))
	w := randTernary(t, rng, 64, 512, "")
	if err := w.PackTrits(); err != nil {
		t.Fatal(err)
	}
	a := randActivations(t, rng, 1, 512, "")
	want := make([]float32, 64)
	matMulGeneric(want, w, a, 0, 64)
	done := make(chan error)
	go func() { // products while the shapes change
		y := make([]float32, 64)
		for range 200 {
			if err := e.MatMul(y, w, a); err != nil {
				done <- err
				return
			}
			if i, ok := firstDiff(y, want); !ok {
				done <- fmt.Errorf("y[%d] got %v, want %v", i, y[i], want[i])
				return
			}
		}
		done <- nil
	}()
	if err := e.AdoptShapes(model, [][2]int{{64, 512}, {128, 256}}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		c          Class
		rows, cols int
		want       Variant
	}{
		{GEMVMemory, 64, 512, "generic-tq1"},
		{GEMVMemory, 128, 256, "generic-tq1"},
		{GEMVCache, 64, 512, "generic"},
		{GEMVCache, 128, 256, model.Choice[GEMVCache]},
		{GEMVMemory, 256, 256, StaticPlan().Choice[GEMVMemory]}, // not the model's shape
		{GEMMSmall, 64, 512, StaticPlan().Choice[GEMMSmall]},    // not a one-token class
	} {
		if got := Variant(e.variantFor(c.c, c.rows, c.cols).name); got != c.want {
			t.Errorf("%s %dx%d: got %s, want %s", c.c, c.rows, c.cols, got, c.want)
		}
	}
	if !e.ReadsTritsFor(false, 64, 512) || e.ReadsTritsFor(false, 256, 256) {
		t.Error("ReadsTritsFor: want true on the adopted tq1 shape only")
	}
	bad := Plan{Choice: map[Class]Variant{}}
	if err := e.AdoptShapes(bad, [][2]int{{64, 512}}); err == nil {
		t.Error("AdoptShapes with an incomplete plan: got nil error")
	}
	forced, err := New(WithPath(Generic), WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	defer forced.Close()
	if err := forced.AdoptShapes(model, [][2]int{{64, 512}}); err != nil {
		t.Fatal(err)
	}
	if got := forced.variantFor(GEMVMemory, 64, 512).name; got != "generic" {
		t.Errorf("forced engine: got %s, want generic (AdoptShapes ignored)", got)
	}
}
