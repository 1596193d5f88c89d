package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/bitnet-mesh/bitnet-mesh/cmd/bitnet/internal/config"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metal"
	"github.com/bitnet-mesh/bitnet-mesh/shared/mmap"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// kernelShapes returns the BitLinear shapes (out x in) of BitNet b1.58 2B4T.
func kernelShapes() [][2]int { return [][2]int{{2560, 2560}, {640, 2560}, {6912, 2560}, {2560, 6912}} }

// benchKernelResult is one measurement of "bitnet bench kernels".
type benchKernelResult struct {
	Path       string  `json:"path"`
	Out        int     `json:"out"`
	In         int     `json:"in"`
	N          int     `json:"n"`
	Threads    int     `json:"threads"`
	Cold       bool    `json:"cold"`
	NsPerOp    float64 `json:"ns_per_op"`
	WeightGBps float64 `json:"weight_gbps"`
	GOPS       float64 `json:"gops"`
	BWRatio    float64 `json:"bw_ratio"`
}

// benchKernelReport is the --json output (the contract of issue 2), with
// the measured plan per thread count: its rows have path "plan".
type benchKernelReport struct {
	BandwidthGBps map[string]float64      `json:"bandwidth_gbps"`
	Results       []benchKernelResult     `json:"results"`
	Plans         map[string]kernels.Plan `json:"plans,omitempty"`
}

// benchKernelConfig sizes one run.
type benchKernelConfig struct {
	paths     []kernels.Path
	threads   []int
	shapes    [][2]int      // out x in
	ns        []int         // token counts; n = 1 also runs cold
	probeSize int           // bytes streamed by the bandwidth probe
	minTime   time.Duration // per repetition
	reps      int           // best of reps
	coldBytes int           // weights rotated through by cold runs (> LLC)
	// plan, unless static, also runs the kernel plan of each thread count
	// (kernels.LoadPlan on these shapes) as path "plan".
	plan kernels.PlanMode
	// gpu, when set, runs path "metal" (every product on the GPU) and
	// joins the plans' measurements.
	gpu kernels.Accelerator
}

// newBenchKernelsCmd is "bitnet bench kernels": memory read bandwidth,
// then every kernel path over the 2B4T shapes for n = 1 (cold and
// cache-resident), 8 and 64 tokens at 1 and all threads.
func newBenchKernelsCmd(env config.Lookup) *cobra.Command {
	var (
		asJSON, quick, sweep bool
		pathFlag             string
		threads, rounds      int
	)
	c := &cobra.Command{
		Use:   "kernels [--quick] [--path P] [--threads N] [--json]",
		Short: "Benchmark memory bandwidth and every kernel path on 2B4T's shapes",
		Long: `Measure memory read bandwidth, then every kernel path this CPU supports over
the BitLinear shapes of BitNet b1.58 2B4T, for 1 token (cold and cache-resident),
8 and 64 tokens, at 1 and --threads threads. bw_ratio is the weight stream rate
over the measured bandwidth.`,
		Example: `  bitnet bench kernels --quick
  bitnet bench kernels --path avx2 --threads 2 --json`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("bench kernels: unexpected arguments %q", args)
			}
			return nil
		},
	}
	f := c.Flags()
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	f.BoolVar(&quick, "quick", false, "shorter run (smaller probe, fewer repetitions)")
	f.BoolVar(&sweep, "variants", false, "instead: cold GEMV of every kernel variant on each shape and the output head (vocabulary 128256) against the read probe, interleaved round by round, each operation timed alone (fast decile and median reported, variants ranked by median as the plan ranks them), with the plan's pick marked")
	f.IntVar(&rounds, "rounds", 30, "rounds of the --variants sweep")
	f.StringVar(&pathFlag, "path", "", "only this kernel path: generic, avx2, avx512, neon or metal (default: every supported one, metal where the GPU passes its self-test)")
	f.IntVar(&threads, "threads", runtime.GOMAXPROCS(0), "thread count of the multi-threaded runs (runs also use 1)")
	_ = c.RegisterFlagCompletionFunc("path", fixedCompletion("generic", "avx2", "avx512", "neon", "metal"))
	set := config.Bind(c, config.KernelPlan, config.Metal)
	c.RunE = func(c *cobra.Command, _ []string) error {
		v, err := set.Resolve(env)
		if err != nil {
			return fmt.Errorf("bench kernels: %w", err)
		}
		plan := kernels.PlanMode(config.KernelPlan.Get(v))
		if sweep {
			return benchVariantsRun(c.Context(), asJSON, quick, threads, rounds, plan, c.OutOrStdout(), c.ErrOrStderr())
		}
		return benchKernelsRun(c.Context(), asJSON, quick, pathFlag, threads, plan, metal.Mode(config.Metal.Get(v)), c.OutOrStdout(), c.ErrOrStderr())
	}
	return c
}

func benchKernelsRun(ctx context.Context, asJSON, quick bool, pathFlag string, threads int, plan kernels.PlanMode, metalMode metal.Mode, stdout, stderr io.Writer) error {
	if threads < 1 {
		return fmt.Errorf("bench kernels: --threads %d must be at least 1", threads)
	}
	cfg := benchKernelConfig{
		paths: kernels.Supported(), threads: []int{1}, shapes: kernelShapes(), ns: []int{1, 8, 64}, probeSize: 1 << 30,
		minTime: 200 * time.Millisecond, reps: 3, coldBytes: 96 << 20, plan: plan,
	}
	if threads > 1 {
		cfg.threads = append(cfg.threads, threads)
	}
	if quick {
		cfg.probeSize, cfg.minTime, cfg.reps = 256<<20, 30*time.Millisecond, 1
	}
	var only kernels.Path
	if pathFlag != "" {
		p, err := kernels.ParsePath(pathFlag)
		if err != nil {
			return fmt.Errorf("bench kernels: %w", err)
		}
		if p != kernels.Metal && !kernels.IsSupported(p) {
			return fmt.Errorf("bench kernels: %w: %q (supported: %v)", kernels.ErrUnsupported, p, kernels.Supported())
		}
		only = p
		cfg.paths = []kernels.Path{p}
		cfg.plan = kernels.PlanStatic
	}
	switch {
	case only == kernels.Metal:
		metalMode = metal.ModeOn
	case only != "":
		metalMode = metal.ModeOff
	}
	gpu, info, err := metal.Start(metalMode)
	if err != nil {
		return fmt.Errorf("bench kernels: %w", err)
	}
	if gpu != nil {
		defer gpu.Close()
		cfg.gpu = gpu
		if only == "" {
			cfg.paths = append(cfg.paths, kernels.Metal)
		}
		fmt.Fprintf(stderr, "metal: %s passed its self-test\n", info.Device)
	} else if info.Device != "" {
		fmt.Fprintf(stderr, "metal: %s not used: %s\n", info.Device, info.Reason)
	}
	rep, err := benchKernels(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(rep)
	}
	printKernelReport(stdout, rep)
	return nil
}

// benchVariantsRun is "bench kernels --variants".
func benchVariantsRun(ctx context.Context, asJSON, quick bool, threads, rounds int, mode kernels.PlanMode, stdout, stderr io.Writer) error {
	if threads < 1 || rounds < 1 {
		return fmt.Errorf("bench kernels: --threads %d and --rounds %d must be at least 1", threads, rounds)
	}
	cfg := sweepConfig{threads: []int{1}, shapes: kernelShapes(), head: [2]int{128256, 2560}, rounds: rounds, roundB: 8 << 20,
		coldBytes: 96 << 20, plans: map[int]kernels.Plan{}}
	if threads > 1 {
		cfg.threads = append(cfg.threads, threads)
	}
	if quick {
		cfg.rounds, cfg.roundB, cfg.head[0] = min(rounds, 4), 2<<20, 32000
	}
	for _, th := range cfg.threads {
		p := kernels.StaticPlan()
		if mode != kernels.PlanStatic {
			var err error
			p, err = kernels.LoadPlan(ctx, kernels.PlanConfig{Mode: mode, Measure: kernels.MeasureConfig{Threads: th, Shapes: cfg.shapes}})
			if err != nil {
				return fmt.Errorf("bench kernels: plan: %w", err)
			}
		}
		cfg.plans[th] = p
		fmt.Fprintf(stdout, "plan, %d threads: %s\n", th, p)
	}
	out := stdout
	if asJSON {
		out = io.Discard
	}
	rs, err := benchVariants(ctx, cfg, out, stderr)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"plans": cfg.plans, "variants": rs})
	}
	return nil
}

func benchKernels(ctx context.Context, cfg benchKernelConfig, log io.Writer) (*benchKernelReport, error) {
	rep := &benchKernelReport{BandwidthGBps: map[string]float64{}}
	buf := mmap.HugeBytes(cfg.probeSize) // huge pages, as the weights are
	for i := range buf {
		buf[i] = byte(i)
	}
	for _, th := range cfg.threads {
		// Best of runs with and without software prefetch: bw_ratio is then
		// against the bandwidth really achievable.
		bw := 0.0
		for range max(cfg.reps, 2) {
			for _, pf := range []bool{false, true} {
				bw = max(bw, readBandwidth(buf, th, pf))
			}
		}
		rep.BandwidthGBps[strconv.Itoa(th)] = bw
		fmt.Fprintf(log, "read bandwidth, %d threads: %.1f GB/s\n", th, bw)
	}
	buf = nil
	// Engines: every forced path, then the plan of each thread count.
	type benchEngine struct {
		label string
		opts  func(th int) []kernels.Option
	}
	var engines []benchEngine
	for _, p := range cfg.paths {
		engines = append(engines, benchEngine{string(p), func(th int) []kernels.Option {
			opts := []kernels.Option{kernels.WithPath(p), kernels.WithThreads(th)}
			if p == kernels.Metal {
				opts = append(opts, kernels.WithAccelerator(cfg.gpu))
			}
			return opts
		}})
	}
	if cfg.plan != "" && cfg.plan != kernels.PlanStatic {
		rep.Plans = map[string]kernels.Plan{}
		for _, th := range cfg.threads {
			p, err := kernels.LoadPlan(ctx, kernels.PlanConfig{Mode: cfg.plan, Measure: kernels.MeasureConfig{Threads: th, Shapes: cfg.shapes, Accelerator: cfg.gpu}})
			if err != nil {
				return nil, fmt.Errorf("bench kernels: plan: %w", err)
			}
			rep.Plans[strconv.Itoa(th)] = p
			fmt.Fprintf(log, "plan, %d threads: %s\n", th, p)
		}
		engines = append(engines, benchEngine{"plan", func(th int) []kernels.Option {
			opts := []kernels.Option{kernels.WithPlan(rep.Plans[strconv.Itoa(th)]), kernels.WithThreads(th)}
			if cfg.gpu != nil {
				opts = append(opts, kernels.WithAccelerator(cfg.gpu))
			}
			return opts
		}})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sh := range cfg.shapes {
		rows, cols := sh[0], sh[1]
		w, err := randomTernary(rng, rows, cols)
		if err != nil {
			return nil, fmt.Errorf("bench kernels: shape %dx%d: %w", rows, cols, err)
		}
		var cold []*ternary.Matrix // on huge pages, as a model's weights are
		for len(cold) == 0 || len(cold)*len(w.Codes) < cfg.coldBytes {
			c := *w
			c.Codes = hugeClone(w.Codes)
			cold = append(cold, &c)
		}
		for _, n := range cfg.ns {
			a := kernels.NewActivations(n, cols)
			x := make([]float32, n*cols)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			if err := a.Quantize(x); err != nil {
				return nil, err
			}
			y := make([]float32, n*rows)
			for _, be := range engines {
				p := be.label
				for _, th := range cfg.threads {
					e, err := kernels.New(be.opts(th)...)
					if err != nil {
						return nil, err
					}
					for _, isCold := range []bool{true, false} {
						if isCold && n != 1 {
							continue
						}
						if err := ctx.Err(); err != nil {
							e.Close()
							return nil, err
						}
						set := cold[:1]
						if isCold {
							set = cold
						}
						ns, err := timeMatMul(e, y, set, a, cfg, !isCold)
						if err != nil {
							e.Close()
							return nil, err
						}
						r := benchKernelResult{
							Path: string(p), Out: rows, In: cols, N: n, Threads: th, Cold: isCold, NsPerOp: ns,
							WeightGBps: float64(len(w.Codes)) / ns,
							GOPS:       2 * float64(rows*cols*n) / ns,
						}
						if bw := rep.BandwidthGBps[strconv.Itoa(th)]; bw > 0 {
							r.BWRatio = r.WeightGBps / bw
						}
						rep.Results = append(rep.Results, r)
						fmt.Fprintf(log, "%-7s %4dx%-4d n=%-2d threads=%d cold=%-5t %8.1f GB/s %7.1f GOPS\n",
							p, rows, cols, n, th, isCold, r.WeightGBps, r.GOPS)
					}
					e.Close()
				}
			}
		}
	}
	return rep, nil
}

// timeMatMul returns the fast decile of the ns per MatMul, each call timed
// on its own over cfg.reps repetitions of at least cfg.minTime, rotating
// through ws: on a shared machine a window's average measures the load as
// much as the kernel (kernels.Measure times plans the same way).
func timeMatMul(e *kernels.Engine, y []float32, ws []*ternary.Matrix, a *kernels.Activations, cfg benchKernelConfig, resident bool) (float64, error) {
	mm := e.MatMul
	if resident {
		mm = e.MatMulResident
	}
	for _, w := range ws { // warm up and check once
		if err := mm(y, w, a); err != nil {
			return 0, err
		}
		if len(ws) > 8 {
			break
		}
	}
	var samples []float64
	i := 0
	for range cfg.reps {
		start := time.Now()
		for n := 0; n == 0 || time.Since(start) < cfg.minTime; n++ {
			t0 := time.Now()
			if err := mm(y, ws[i%len(ws)], a); err != nil {
				return 0, err
			}
			samples = append(samples, float64(time.Since(t0).Nanoseconds()))
			i++
		}
	}
	return quantile(samples, 0.1), nil
}

// readBandwidth streams buf in 4 MiB chunks, each with threads goroutines
// (each its own part) and timed on its own, and returns the fast decile's
// GB/s, as the kernels are timed.
func readBandwidth(buf []byte, threads int, prefetch bool) float64 {
	chunk := min(4<<20, len(buf))
	var samples []float64
	for off := 0; chunk > 0 && off+chunk <= len(buf); off += chunk {
		c := buf[off : off+chunk]
		part := len(c) / threads &^ 255
		t0 := time.Now()
		if threads == 1 {
			kernels.ReadSum(c, prefetch)
		} else {
			var wg sync.WaitGroup
			for t := range threads {
				wg.Go(func() { kernels.ReadSum(c[t*part:(t+1)*part], prefetch) })
			}
			wg.Wait()
		}
		samples = append(samples, float64(time.Since(t0).Nanoseconds())/float64(part*threads))
	}
	if len(samples) == 0 {
		return 0
	}
	return 1 / quantile(samples, 0.1)
}

// randomTernary returns a rows x cols matrix of random codes.
func randomTernary(rng *rand.Rand, rows, cols int) (*ternary.Matrix, error) {
	m, err := ternary.New(rows, cols, 0.5)
	if err != nil {
		return nil, err
	}
	for i := range m.Codes {
		v := rng.IntN(81)
		m.Codes[i] = byte(v%3 | v/3%3<<2 | v/9%3<<4 | v/27<<6)
	}
	return m, nil
}

func printKernelReport(w io.Writer, rep *benchKernelReport) {
	fmt.Fprintln(w, "read bandwidth (GB/s):")
	for k, v := range rep.BandwidthGBps {
		fmt.Fprintf(w, "  %s threads: %.1f\n", k, v)
	}
	for k, p := range rep.Plans {
		fmt.Fprintf(w, "plan, %s threads: %s\n", k, p)
	}
	fmt.Fprintf(w, "%-7s %-10s %3s %7s %5s %12s %9s %8s %8s\n", "path", "shape", "n", "threads", "cold", "ns/op", "GB/s", "GOPS", "bw_ratio")
	for _, r := range rep.Results {
		fmt.Fprintf(w, "%-7s %-10s %3d %7d %5t %12.0f %9.2f %8.1f %8.2f\n", r.Path, fmt.Sprintf("%dx%d", r.Out, r.In),
			r.N, r.Threads, r.Cold, r.NsPerOp, r.WeightGBps, r.GOPS, r.BWRatio)
	}
	if len(rep.Plans) == 0 {
		return
	}
	// The plan against the best forced path of each case.
	type caseKey struct {
		out, in, n, threads int
		cold                bool
	}
	best := map[caseKey]benchKernelResult{}
	plan := map[caseKey]benchKernelResult{}
	var order []caseKey
	for _, r := range rep.Results {
		k := caseKey{r.Out, r.In, r.N, r.Threads, r.Cold}
		if r.Path == "plan" {
			plan[k] = r
			order = append(order, k)
		} else if b, ok := best[k]; !ok || r.NsPerOp < b.NsPerOp {
			best[k] = r
		}
	}
	fmt.Fprintf(w, "\nplan vs best forced path (plan ns / best ns; above 1.03 misses the target):\n")
	fmt.Fprintf(w, "%-10s %3s %7s %5s %-8s %12s %12s %7s\n", "shape", "n", "threads", "cold", "best", "best ns", "plan ns", "ratio")
	for _, k := range order {
		b, p := best[k], plan[k]
		fmt.Fprintf(w, "%-10s %3d %7d %5t %-8s %12.0f %12.0f %7.3f\n", fmt.Sprintf("%dx%d", k.out, k.in), k.n, k.threads, k.cold,
			b.Path, b.NsPerOp, p.NsPerOp, p.NsPerOp/b.NsPerOp)
	}
}
