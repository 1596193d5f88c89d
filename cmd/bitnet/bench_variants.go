package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/mmap"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// The cold GEMV sweep ("bench kernels --variants"): every kernel variant of
// the decode classes against the read probe on the same bytes, one token,
// weights streamed from DRAM. On a machine shared with other processes a
// long average measures the load, not the kernel, so each operation is
// timed on its own, variants and probe alternate round by round (a burst of
// load hits all of them alike), and the report takes the fast decile of
// each: the speed the kernel has when it runs, set against the probe's,
// measured in the same rounds over the same bytes. The variants are ranked
// (vsbest50) by their median call, as the plan ranks these classes
// (kernels.Measure): a decode pays every call, and the fast decile is the
// machine's best bandwidth of those seconds, which flatters the
// bandwidth-bound variants against the compute-bound 1.6-bit ones.

// variantResult is one row of the sweep.
type variantResult struct {
	Shape   string  `json:"shape"` // "6912x2560" or "head int6 128256x2560"
	Variant string  `json:"variant"`
	Threads int     `json:"threads"`
	Bytes   int     `json:"bytes"` // weight bytes one operation reads
	P10Ns   float64 `json:"p10_ns"`
	P50Ns   float64 `json:"p50_ns"`
	GBps    float64 `json:"gbps"`    // Bytes over P10Ns
	Probe   float64 `json:"probe"`   // the probe's GB/s over the same rounds (2-bit bytes)
	Ratio   float64 `json:"ratio"`   // GBps / Probe
	VsBest  float64 `json:"vs_best"` // P50Ns over the fastest variant's (the plan's statistic)
	Samples int     `json:"samples"` // operations timed
	Planned bool    `json:"planned"` // the plan's choice for this class
	Class   string  `json:"class"`   // gemv_dram or head
	Format  string  `json:"format"`  // head format; "" for ternary
	Tq1     bool    `json:"tq1"`     // reads the 1.6-bit layout
	Load    float64 `json:"load1"`   // 1-minute load average at the end of the case
}

// sweepConfig sizes the sweep.
type sweepConfig struct {
	threads   []int
	shapes    [][2]int
	head      [2]int // vocabulary x hidden; zero skips the head
	rounds    int
	roundB    int // bytes each variant streams per round (at least one operation)
	coldBytes int
	plans     map[int]kernels.Plan
}

// timedOp is one contender of a case: a label and a call on the i-th cold copy.
type timedOp struct {
	label string
	bytes int
	tq1   bool
	op    func(i int) error
}

// benchVariants runs the sweep and prints its table to w.
func benchVariants(ctx context.Context, cfg sweepConfig, w, log io.Writer) ([]variantResult, error) {
	var out []variantResult
	rng := rand.New(rand.NewPCG(5, 6))
	for _, sh := range cfg.shapes {
		rows, cols := sh[0], sh[1]
		w0, err := randomTernary(rng, rows, cols)
		if err != nil {
			return nil, err
		}
		if err := w0.PackTrits(); err != nil {
			return nil, err
		}
		// Cold copies on huge pages, as a model's weights are.
		var cold []*ternary.Matrix
		for len(cold) == 0 || len(cold)*len(w0.Codes) < cfg.coldBytes {
			c := *w0
			c.Codes = hugeClone(w0.Codes)
			c.Trits = hugeClone(w0.Trits)
			cold = append(cold, &c)
		}
		a, err := sweepActivations(rng, cols)
		if err != nil {
			return nil, err
		}
		y := make([]float32, rows)
		for _, th := range cfg.threads {
			var ops []timedOp
			var engines []*kernels.Engine
			for _, v := range kernels.MeasuredVariants(kernels.GEMVMemory) {
				e, err := kernels.New(kernels.WithPlan(kernels.VariantPlan(v)), kernels.WithThreads(th))
				if err != nil {
					return nil, err
				}
				engines = append(engines, e)
				b, tq1 := len(w0.Codes), e.ReadsTrits(false)
				if tq1 {
					b = len(w0.Trits)
				}
				ops = append(ops, timedOp{string(v), b, tq1, func(i int) error { return e.MatMul(y, cold[i%len(cold)], a) }})
			}
			probe := func(i int) error { readParallel(cold[i%len(cold)].Codes, th); return nil }
			rs, err := sweepCase(ctx, cfg, ops, probe, len(w0.Codes))
			for _, e := range engines {
				e.Close()
			}
			if err != nil {
				return nil, err
			}
			planned := cfg.plans[th].VariantFor(kernels.GEMVMemory, rows, cols)
			for i := range rs {
				rs[i].Shape, rs[i].Threads, rs[i].Class = fmt.Sprintf("%dx%d", rows, cols), th, kernels.GEMVMemory.String()
				rs[i].Planned = rs[i].Variant == string(planned)
			}
			printSweep(w, rs)
			fmt.Fprintf(log, "sweep %dx%d threads=%d done (load %.1f)\n", rows, cols, th, rs[0].Load)
			out = append(out, rs...)
		}
	}
	if cfg.head[0] > 0 {
		rs, err := sweepHead(ctx, cfg, rng, w, log)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

// sweepHead times the output head (one token) in int8 and the default
// packed format, every head variant against the probe on its bytes.
func sweepHead(ctx context.Context, cfg sweepConfig, rng *rand.Rand, w, log io.Writer) ([]variantResult, error) {
	rows, cols := cfg.head[0], cfg.head[1]
	h8 := &kernels.Int8Matrix{Rows: rows, Cols: cols, Stride: ternary.PaddedCols(cols), Scales: make([]float32, rows)}
	raw := mmap.HugeBytes(rows * h8.Stride) // huge pages, as a model's head is
	h8.Data = unsafe.Slice((*int8)(unsafe.Pointer(unsafe.SliceData(raw))), len(raw))
	for i := range h8.Data {
		if i%h8.Stride < cols {
			h8.Data[i] = int8(rng.IntN(127) - 63)
		}
	}
	for i := range h8.Scales {
		h8.Scales[i] = 0.01
	}
	hp, err := kernels.NewPackedRows(rows, cols, model.DefaultHeadFormat.Bits())
	if err != nil {
		return nil, err
	}
	hp.Data = mmap.HugeBytes(len(hp.Data))
	for i := range hp.Data {
		hp.Data[i] = byte(rng.Uint32())
	}
	for i := range hp.Scales {
		hp.Scales[i] = 0.01
	}
	a, err := sweepActivations(rng, cols)
	if err != nil {
		return nil, err
	}
	// Timed in whole calls, as a model multiplies its head and as the plan
	// times it (kernels.Measure; each call streams the whole head, far more
	// than the last-level cache holds): timed in 2 MB row chunks, the one-row
	// variants tied with avx2 at two threads on Zen 4 where whole calls,
	// and the model, had avx2 ahead (docs/perf.md).
	y := make([]float32, rows)
	var out []variantResult
	for _, th := range cfg.threads {
		for _, f := range []string{"int8", fmt.Sprintf("int%d", hp.Bits)} {
			var ops []timedOp
			var engines []*kernels.Engine
			data := raw // the bytes one call reads
			if f != "int8" {
				data = hp.Data
			}
			for _, v := range kernels.MeasuredVariants(kernels.Head) {
				e, err := kernels.New(kernels.WithPlan(kernels.VariantPlan(v)), kernels.WithThreads(th))
				if err != nil {
					return nil, err
				}
				engines = append(engines, e)
				op := func(int) error { return e.MatMulPacked(y, hp, a) }
				if f == "int8" {
					op = func(int) error { return e.MatMulInt8(y, h8, a) }
				}
				ops = append(ops, timedOp{string(v), len(data), false, op})
			}
			probe := func(int) error { readParallel(data, th); return nil }
			rs, err := sweepCase(ctx, cfg, ops, probe, len(data))
			for _, e := range engines {
				e.Close()
			}
			if err != nil {
				return nil, err
			}
			planned := cfg.plans[th].Choice[kernels.Head]
			for i := range rs {
				rs[i].Shape, rs[i].Threads, rs[i].Class, rs[i].Format = fmt.Sprintf("head %s %dx%d", f, rows, cols), th, kernels.Head.String(), f
				rs[i].Planned = rs[i].Variant == string(planned)
			}
			printSweep(w, rs)
			fmt.Fprintf(log, "sweep head %s threads=%d done (load %.1f)\n", f, th, rs[0].Load)
			out = append(out, rs...)
		}
	}
	return out, nil
}

// sweepCase runs cfg.rounds rounds; in each, every op and the probe in
// turn run on consecutive cold copies (one shared counter, so that no copy
// is read again while still cached) for at least cfg.roundB bytes.
func sweepCase(ctx context.Context, cfg sweepConfig, ops []timedOp, probe func(int) error, probeBytes int) ([]variantResult, error) {
	all := append(slices.Clone(ops), timedOp{"probe", probeBytes, false, probe})
	samples := make([][]float64, len(all))
	idx := 0
	for _, o := range all { // warm up (page faults, engines' workers)
		if err := o.op(idx); err != nil {
			return nil, fmt.Errorf("bench kernels: %s: %w", o.label, err)
		}
		idx++
	}
	for r := range cfg.rounds {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for k := range all {
			j := (k + r) % len(all) // rotate who goes first
			o := all[j]
			for done := 0; done == 0 || done < cfg.roundB; done += o.bytes {
				t0 := time.Now()
				if err := o.op(idx); err != nil {
					return nil, fmt.Errorf("bench kernels: %s: %w", o.label, err)
				}
				samples[j] = append(samples[j], float64(time.Since(t0).Nanoseconds()))
				idx++
			}
		}
	}
	pn := quantile(samples[len(all)-1], 0.1)
	probeGB := float64(probeBytes) / pn
	load := loadAverage()
	var rs []variantResult
	best := 0.0
	for j, o := range ops {
		p10, p50 := quantile(samples[j], 0.1), quantile(samples[j], 0.5)
		if best == 0 || p50 < best {
			best = p50
		}
		gb := float64(o.bytes) / p10
		rs = append(rs, variantResult{Variant: o.label, Bytes: o.bytes, P10Ns: p10, P50Ns: p50, GBps: gb,
			Probe: probeGB, Ratio: gb / probeGB, Samples: len(samples[j]), Tq1: o.tq1, Load: load})
	}
	for i := range rs {
		rs[i].VsBest = rs[i].P50Ns / best
	}
	return rs, nil
}

// quantile returns the q-quantile of x (sorted in place).
func quantile(x []float64, q float64) float64 {
	if len(x) == 0 {
		return 0
	}
	slices.Sort(x)
	return x[min(int(q*float64(len(x))), len(x)-1)]
}

// readParallel streams b with threads goroutines, each its own part, with
// software prefetch.
func readParallel(b []byte, threads int) {
	if threads <= 1 {
		kernels.ReadSum(b, true)
		return
	}
	part := (len(b) / threads) &^ 255
	var wg sync.WaitGroup
	for t := range threads {
		end := (t + 1) * part
		if t == threads-1 {
			end = len(b)
		}
		wg.Go(func() { kernels.ReadSum(b[t*part:end], true) })
	}
	wg.Wait()
}

// sweepActivations returns one quantised token of cols normal features.
func sweepActivations(rng *rand.Rand, cols int) (*kernels.Activations, error) {
	a := kernels.NewActivations(1, cols)
	x := make([]float32, cols)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return a, a.Quantize(x)
}

// printSweep prints one case of the sweep.
func printSweep(w io.Writer, rs []variantResult) {
	if len(rs) == 0 {
		return
	}
	r0 := rs[0]
	fmt.Fprintf(w, "\n%s, %d threads: probe %.1f GB/s (fast decile over the rounds), load %.1f\n", r0.Shape, r0.Threads, r0.Probe, r0.Load)
	fmt.Fprintf(w, "  %-14s %9s %10s %10s %7s %7s %7s\n", "variant", "bytes", "p10 ns", "p50 ns", "GB/s", "xprobe", "vsbest50")
	for _, r := range rs {
		mark := ""
		if r.Planned {
			mark = " <- plan"
		}
		fmt.Fprintf(w, "  %-14s %9d %10.0f %10.0f %7.2f %7.2f %7.3f%s\n", r.Variant, r.Bytes, r.P10Ns, r.P50Ns, r.GBps, r.Ratio, r.VsBest, mark)
	}
}

// loadAverage returns the 1-minute load average (0 where /proc has none):
// printed with every number, since the machine may be shared.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	x, _ := strconv.ParseFloat(f[0], 64)
	return x
}

// hugeClone returns a copy of b on huge pages (mmap.HugeBytes).
func hugeClone(b []byte) []byte {
	c := mmap.HugeBytes(len(b))
	copy(c, b)
	return c
}
