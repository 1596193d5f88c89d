package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bitnet-mesh/bitnet-mesh/cmd/bitnet/internal/config"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metal"
	"github.com/bitnet-mesh/bitnet-mesh/shared/mmap"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// benchModelResult is one thread count's measurement. Speeds are medians
// over the repetitions; this machine's memory bandwidth drifts, so each
// decode repetition is paired with a read-bandwidth probe just before it.
type benchModelResult struct {
	Threads     int     `json:"threads"`
	LoadSeconds float64 `json:"load_s"`
	PrefillTokS float64 `json:"prefill_tok_s"`
	DecodeTokS  float64 `json:"decode_tok_s"`
	// Best repetition: the least disturbed by other tenants.
	PrefillTokSBest float64 `json:"prefill_tok_s_best"`
	DecodeTokSBest  float64 `json:"decode_tok_s_best"`
	// Tokens per second of process CPU time (user+sys): on a busy machine
	// this tracks the uncontended single-thread rate better than wall time.
	PrefillTokCPUS float64 `json:"prefill_tok_per_cpu_s,omitempty"`
	DecodeTokCPUS  float64 `json:"decode_tok_per_cpu_s,omitempty"`
	// Decode is memory bound: bytes read per token (ternary weights, int8
	// head, KV cache at the mean position), the rate that makes, the read
	// bandwidth of n threads measured just before, and their ratio (median
	// of the per-repetition ratios).
	DecodeBytesPerToken float64 `json:"decode_bytes_per_token"`
	DecodeGBs           float64 `json:"decode_gb_s"`
	ProbeGBs            float64 `json:"probe_gb_s"`
	DecodeBWRatio       float64 `json:"decode_bw_ratio"`
	Repeat              int     `json:"repeat"`
	// Batch sequences (--batch > 1) decoding together, one token each per
	// forward pass (the inference service's continuous batching): their
	// tokens per second together, median over the repetitions.
	Batch           int     `json:"batch,omitempty"`
	DecodeBatchTokS float64 `json:"decode_batch_tok_s,omitempty"`
	VmRSSMiB        float64 `json:"vmrss_mib"`
	// AnonHugeMiB is the resident memory on transparent huge pages (Linux).
	AnonHugeMiB float64 `json:"anon_huge_mib"`
}

// benchModelReport is the --json output of "bitnet bench model".
type benchModelReport struct {
	Model      string             `json:"model"`
	Kernel     string             `json:"kernel"`
	KVCache    string             `json:"kv_cache"`
	Prompt     int                `json:"prompt_tokens"`
	Gen        int                `json:"gen_tokens"`
	Results    []benchModelResult `json:"results"`
	VmHWMMiB   float64            `json:"vmhwm_mib"`
	TernaryMiB float64            `json:"ternary_weights_mib"`
	// HeadInt8MiB is the output head's size in its format (HeadFormat;
	// the name predates int6/int4 heads).
	HeadInt8MiB float64 `json:"head_int8_mib"`
	HeadFormat  string  `json:"head_format"`
	KVCacheMiB  float64 `json:"kv_cache_mib"`
	// TargetRSSMiB is the bound: (ternary + head + KV) * 1.1.
	TargetRSSMiB float64 `json:"target_rss_mib"`
	GoMaxProcs   int     `json:"gomaxprocs"`
	NumCPU       int     `json:"num_cpu"`
	TimestampUTC string  `json:"time"`
}

// newBenchModelCmd is "bitnet bench model": prefill and decode speed, load
// time and resident memory of a model at one or more thread counts.
func newBenchModelCmd(env config.Lookup) *cobra.Command {
	var (
		path, threadList           string
		asJSON                     bool
		prompt, gen, repeat, probe int
		batch                      int
		seed                       uint64
	)
	c := &cobra.Command{
		Use:   "model --model PATH [--threads 1,2] [--prompt N] [--gen N] [--json] [flags]",
		Short: "Benchmark a model's load, prefill and decode speed and memory",
		Long: `Load a model (Hugging Face directory or .gguf) at each thread count and measure
load time, prefill and decode speed (medians and best of --repeat runs), decode
bytes per token against a paired read-bandwidth probe, and resident memory.
Make a 2B4T-shaped model with: go run ./tools/randmodel -out /tmp/bitnet-2b.gguf`,
		Example: `  bitnet bench model --model /tmp/bitnet-2b.gguf
  bitnet bench model --model /tmp/opticks --threads 1,2,4 --prompt 64 --gen 32 --json
  bitnet bench model --model m.gguf --kernel avx2 --kv-cache f32 --huge-pages=false
  bitnet bench model --model m.gguf --threads 1 --repeat 1 --cpuprofile cpu.pprof && go tool pprof -top cpu.pprof
  bitnet bench model --model m.gguf --threads 2 --batch 16`,
		Args: noArgs,
	}
	set := config.Bind(c, config.Kernel, config.KernelPlan, config.Metal, config.Head, config.I2SBlock, config.KVCache, config.HugePages, config.CPUProfile)
	f := c.Flags()
	f.StringVar(&path, "model", "", "model: a Hugging Face directory or a .gguf file (required)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	f.StringVar(&threadList, "threads", "1,2", "comma-separated thread counts")
	f.IntVar(&prompt, "prompt", 128, "prompt tokens (prefill)")
	f.IntVar(&gen, "gen", 64, "generated tokens (decode)")
	f.Uint64Var(&seed, "seed", 1, "seed of the random prompt")
	f.IntVar(&repeat, "repeat", 3, "repetitions of prefill and decode per thread count (medians are reported)")
	f.IntVar(&probe, "probe-mib", 256, "read-bandwidth probe buffer in MiB (0: no probe)")
	f.IntVar(&batch, "batch", 1, "also decode this many sequences together (each after its own --prompt tokens) and report their tokens/s together (1: no batch run)")
	c.RunE = func(c *cobra.Command, _ []string) error {
		if path == "" {
			return errors.New("bench model: --model is required")
		}
		v, err := set.Resolve(env)
		if err != nil {
			return fmt.Errorf("bench model: %w", err)
		}
		return benchModel(c.Context(), v, path, threadList, asJSON, benchSizes{prompt, gen, repeat, probe, batch}, seed, c.OutOrStdout())
	}
	return c
}

// benchSizes are bench model's run sizes: prompt and generated tokens,
// repetitions, the probe's MiB and the batch run's sequences.
type benchSizes struct{ prompt, gen, repeat, probeMiB, batch int }

func benchModel(ctx context.Context, v *config.Values, path, threadList string, asJSON bool, sz benchSizes, seed uint64, stdout io.Writer) error {
	prompt, gen, repeat, probeMiB := sz.prompt, sz.gen, sz.repeat, sz.probeMiB
	kernel, huge, metalMode := config.Kernel.Get(v), config.HugePages.Get(v), config.Metal.Get(v)
	plan, head := kernels.PlanMode(config.KernelPlan.Get(v)), kernels.HeadFormat(config.Head.Get(v))
	i2s := ternary.I2SBlock(config.I2SBlock.Get(v))
	kv, err := model.ParseKVType(config.KVCache.Get(v))
	if err != nil {
		return fmt.Errorf("bench model: %w", err)
	}
	if repeat < 1 || probeMiB < 0 {
		return fmt.Errorf("bench model: --repeat = %d must be >= 1 and --probe-mib = %d >= 0", repeat, probeMiB)
	}
	if prompt < 1 || gen < 1 {
		return fmt.Errorf("bench model: --prompt = %d and --gen = %d must be >= 1", prompt, gen)
	}
	if sz.batch < 1 || sz.batch > 256 {
		return fmt.Errorf("bench model: --batch = %d must be in [1,256]", sz.batch)
	}
	threads, err := parseThreadList(threadList)
	if err != nil {
		return fmt.Errorf("bench model: %w", err)
	}
	rep := benchModelReport{Model: path, Prompt: prompt, Gen: gen, KVCache: kv.String(),
		GoMaxProcs: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(),
		TimestampUTC: time.Now().UTC().Format(time.RFC3339)}
	for _, n := range threads {
		prof := config.CPUProfile.Get(v)
		if prof != "" && len(threads) > 1 {
			prof += ".t" + strconv.Itoa(n)
		}
		r, info, err := benchModelOnce(ctx, path, kernel, metalMode, plan, head, n, sz, seed, kv, huge, i2s, prof)
		if err != nil {
			return fmt.Errorf("bench model: %d threads: %w", n, err)
		}
		rep.Kernel = info.kernel
		rep.TernaryMiB, rep.HeadInt8MiB, rep.KVCacheMiB = toMiB(info.ternary), toMiB(info.head), toMiB(info.kv)
		rep.TargetRSSMiB = 1.1 * (rep.TernaryMiB + rep.HeadInt8MiB + rep.KVCacheMiB)
		rep.HeadFormat = string(head)
		rep.Results = append(rep.Results, r)
		if !asJSON {
			fmt.Fprintf(stdout, "threads %d: load %.2f s, prefill %.1f tok/s (best %.1f; %d tokens), decode %.1f tok/s (best %.1f; %d tokens), VmRSS %.0f MiB\n",
				n, r.LoadSeconds, r.PrefillTokS, r.PrefillTokSBest, prompt, r.DecodeTokS, r.DecodeTokSBest, gen, r.VmRSSMiB)
			fmt.Fprintf(stdout, "  %.0f MiB on huge pages; decode reads %.0f MB/token: %.1f GB/s against a %.1f GB/s read probe (ratio %.2f, median of %d)\n",
				r.AnonHugeMiB, r.DecodeBytesPerToken/1e6, r.DecodeGBs, r.ProbeGBs, r.DecodeBWRatio, r.Repeat)
			if r.Batch > 1 {
				fmt.Fprintf(stdout, "  batch of %d: decode %.1f tok/s together (median of %d)\n", r.Batch, r.DecodeBatchTokS, r.Repeat)
			}
		}
	}
	mem := procStatusMiB()
	rep.VmHWMMiB = mem["VmHWM"]
	if asJSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "kernel %s, KV cache %s; VmHWM %.0f MiB; ternary weights %.0f MiB + %s head %.0f MiB + KV cache %.0f MiB (+10%%: %.0f MiB)\n",
		rep.Kernel, rep.KVCache, rep.VmHWMMiB, rep.TernaryMiB, rep.HeadFormat, rep.HeadInt8MiB, rep.KVCacheMiB, rep.TargetRSSMiB)
	return nil
}

// startCPUProfile writes a pprof CPU profile to path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func toMiB(b int64) float64 { return float64(b) / (1 << 20) }

func parseThreadList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1024 {
			return nil, fmt.Errorf("--threads %q: want comma-separated counts in [1,1024]", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// benchInfo is what a run learns about the model's memory and kernels.
type benchInfo struct {
	kernel            string
	ternary, head, kv int64
}

// benchModelOnce loads the model on an engine of n threads, then repeats a
// prefill of a random prompt and greedy decoding of gen tokens, each decode
// right after a read-bandwidth probe of n threads over probeMiB MiB. With
// a profile path, the repetitions (not the load) are CPU-profiled into it.
func benchModelOnce(ctx context.Context, path, kernel, metalMode string, plan kernels.PlanMode, head kernels.HeadFormat, n int, sz benchSizes, seed uint64, kv model.KVType, huge bool, i2s ternary.I2SBlock, profile string) (benchModelResult, benchInfo, error) {
	prompt, gen, repeat, probeMiB := sz.prompt, sz.gen, sz.repeat, sz.probeMiB
	r := benchModelResult{Threads: n, Repeat: repeat}
	var info benchInfo
	// n threads means n for everything, like llama-bench -t n: the float
	// parts of the forward pass and the loader use GOMAXPROCS.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(n))
	runtime.GC()
	debug.FreeOSMemory()
	eng, err := genEngine(kernel, plan, metalMode, n, planMeasure(path, head))
	if err != nil {
		return r, info, err
	}
	defer eng.Close()
	info.kernel = string(eng.Path())
	if !eng.Forced() {
		info.kernel = eng.Plan().String()
	}
	start := time.Now()
	m, err := model.Load(path, model.WithEngine(eng.Engine), model.WithKVType(kv), model.WithHugePages(huge), model.WithHeadFormat(head), model.WithI2SBlock(i2s))
	if err != nil {
		return r, info, err
	}
	defer m.Close()
	r.LoadSeconds = time.Since(start).Seconds()
	// Return the loader's temporary buffers so VmRSS shows the model alone.
	runtime.GC()
	debug.FreeOSMemory()
	c := m.Config()
	if prompt+gen > c.MaxPositions {
		return r, info, fmt.Errorf("--prompt + --gen = %d exceeds the context of %d positions", prompt+gen, c.MaxPositions)
	}
	info.ternary = m.TernaryBytes()
	info.head = m.HeadBytes()
	rng := rand.New(rand.NewPCG(seed, 1))
	ids := make([]int, prompt)
	for i := range ids {
		ids[i] = rng.IntN(c.VocabSize)
	}
	// Warm up: touch every weight page and size the scratch buffers.
	warm := m.NewSequence()
	if err := m.Forward(ctx, []model.Step{{Seq: warm, Tokens: ids[:min(8, len(ids))]}}); err != nil {
		return r, info, err
	}
	seq := m.NewSequence()
	r.DecodeBytesPerToken = float64(info.ternary+info.head) + float64(seq.CacheBytesPerPosition())*(float64(prompt)+float64(gen-1)/2)
	var probe []byte
	if probeMiB > 0 {
		probe = make([]byte, probeMiB<<20)
		for i := 0; i < len(probe); i += 4096 {
			probe[i] = byte(i >> 12)
		}
		if huge {
			// The weights stream from huge pages; so does the probe, or
			// the ratio would depend on where the heap put it.
			mmap.HugePages(probe)
		}
	}
	if profile != "" {
		stop, err := startCPUProfile(profile)
		if err != nil {
			return r, info, err
		}
		defer stop()
	}
	var pre, dec, decCPU, preCPU, bw, ratio, batch []float64
	var bseqs []*model.Sequence // the batch run's, when there is one
	for i := 0; sz.batch > 1 && i < sz.batch; i++ {
		bseqs = append(bseqs, m.NewSequence())
	}
	for range repeat {
		seq.Reset()
		steps := []model.Step{{Seq: seq, Tokens: ids}}
		start, cpu := time.Now(), procCPUSeconds()
		if err := m.Forward(ctx, steps); err != nil {
			return r, info, err
		}
		pre = append(pre, float64(prompt)/time.Since(start).Seconds())
		preCPU = append(preCPU, perCPUSecond(prompt, cpu))
		p := 0.0
		if probe != nil {
			p = readBandwidth(probe, n, true)
			bw = append(bw, p)
		}
		start, cpu = time.Now(), procCPUSeconds()
		for i := 0; i < gen; i++ {
			steps[0].Tokens = []int{benchArgmax(steps[0].Logits)}
			if err := m.Forward(ctx, steps); err != nil {
				return r, info, err
			}
		}
		d := float64(gen) / time.Since(start).Seconds()
		dec = append(dec, d)
		if len(bseqs) > 0 {
			b, err := benchBatch(ctx, m, bseqs, ids, gen)
			if err != nil {
				return r, info, err
			}
			batch = append(batch, b)
		}
		decCPU = append(decCPU, perCPUSecond(gen, cpu))
		if p > 0 {
			ratio = append(ratio, d*r.DecodeBytesPerToken/1e9/p)
		}
	}
	r.PrefillTokS, r.PrefillTokSBest, r.PrefillTokCPUS = median(pre), slices.Max(pre), median(preCPU)
	r.DecodeTokS, r.DecodeTokSBest, r.DecodeTokCPUS = median(dec), slices.Max(dec), median(decCPU)
	r.DecodeGBs = r.DecodeTokS * r.DecodeBytesPerToken / 1e9
	if len(batch) > 0 {
		r.Batch, r.DecodeBatchTokS = len(bseqs), median(batch)
	}
	if len(bw) > 0 {
		r.ProbeGBs, r.DecodeBWRatio = median(bw), median(ratio)
	}
	info.kv = int64(seq.CacheBytes())
	probe = nil
	runtime.GC()
	debug.FreeOSMemory()
	r.VmRSSMiB = procStatusMiB()["VmRSS"]
	r.AnonHugeMiB = procKBFieldsMiB("/proc/self/smaps_rollup")["AnonHugePages"]
	return r, info, nil
}

// benchBatch prefills each of seqs with ids, then decodes gen tokens in all
// of them together (one forward pass per token, a step per sequence) and
// returns their tokens per second together.
func benchBatch(ctx context.Context, m *model.Model, seqs []*model.Sequence, ids []int, gen int) (float64, error) {
	steps := make([]model.Step, len(seqs))
	for i, s := range seqs {
		s.Reset()
		steps[i] = model.Step{Seq: s, Tokens: ids}
		if err := m.Forward(ctx, steps[i:i+1]); err != nil {
			return 0, err
		}
	}
	next := make([]int, len(seqs))
	start := time.Now()
	for range gen {
		for i := range steps {
			next[i] = benchArgmax(steps[i].Logits)
			steps[i].Tokens = next[i : i+1]
		}
		if err := m.Forward(ctx, steps); err != nil {
			return 0, err
		}
	}
	return float64(len(seqs)*gen) / time.Since(start).Seconds(), nil
}

// median returns the median of x (0 for none).
func median(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := slices.Clone(x)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func benchArgmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// procCPUSeconds returns the process's user+sys CPU time from
// /proc/self/stat (clock ticks of 1/100 s), or -1 where /proc is missing.
func procCPUSeconds() float64 {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return -1
	}
	// Fields after the parenthesised command name: utime and stime are the
	// 12th and 13th of them.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return -1
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	s, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return (u + s) / 100
}

// perCPUSecond is n tokens over the CPU time since cpu0 (0 when unknown).
func perCPUSecond(n int, cpu0 float64) float64 {
	cpu := procCPUSeconds()
	if cpu0 < 0 || cpu <= cpu0 {
		return 0
	}
	return float64(n) / (cpu - cpu0)
}

// procStatusMiB returns the kB fields of /proc/self/status in MiB (empty
// where /proc is missing).
func procStatusMiB() map[string]float64 { return procKBFieldsMiB("/proc/self/status") }

// procKBFieldsMiB returns the "Name: N kB" fields of a /proc file in MiB.
func procKBFieldsMiB(path string) map[string]float64 {
	out := map[string]float64{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 2 && fields[1] == "kB" {
			if n, err := strconv.ParseFloat(fields[0], 64); err == nil {
				out[k] = n / 1024
			}
		}
	}
	return out
}

// localEngine is a kernel engine and the GPU it runs products on, if any.
type localEngine struct {
	*kernels.Engine
	gpu *metal.GPU
}

// Close stops the engine, then releases the GPU.
func (e *localEngine) Close() {
	e.Engine.Close()
	if e.gpu != nil {
		_ = e.gpu.Close()
	}
}

// planMeasure returns what the plan of the model at path is measured on:
// its BitLinear shapes, its head's row length and format (head; "" is the
// default). Where the header cannot be read it keeps the reference shapes
// (BitNet b1.58 2B4T's); the load then says what is wrong.
func planMeasure(path string, head kernels.HeadFormat) kernels.MeasureConfig {
	mc := kernels.MeasureConfig{HeadFormat: head}
	var c model.Config
	var err error
	if fi, e := os.Stat(path); e == nil && fi.IsDir() {
		c, err = model.LoadConfigHF(path)
	} else {
		c, err = model.InspectGGUF(path, false)
	}
	if err == nil {
		mc.Shapes, mc.HeadCols = c.LinearShapes(), c.HiddenSize
	}
	return mc
}

// measureFor is mc at th threads with the accelerator acc.
func measureFor(mc kernels.MeasureConfig, th int, acc kernels.Accelerator) kernels.MeasureConfig {
	mc.Threads, mc.Accelerator = th, acc
	return mc
}

// genEngine builds the kernel engine that --kernel, --kernel-plan, --metal
// and --threads ask for: without --kernel, the plan of this CPU (and GPU,
// where metal.Open's self-test passes) and thread count, measured once and
// cached unless plan is static, which puts every product on the GPU when
// there is one. --kernel metal requires the GPU; a CPU --kernel keeps it off.
// mc says what the plan is measured on (see planMeasure).
func genEngine(path string, plan kernels.PlanMode, metalMode string, threads int, mc kernels.MeasureConfig) (*localEngine, error) {
	var opts []kernels.Option
	if threads < 0 {
		return nil, fmt.Errorf("--threads = %d must be >= 0", threads)
	}
	if threads > 0 {
		opts = append(opts, kernels.WithThreads(threads))
	}
	var p kernels.Path
	if path != "" {
		var err error
		if p, err = kernels.ParsePath(path); err != nil {
			return nil, err
		}
	}
	mode := metal.Mode(metalMode)
	switch {
	case p == kernels.Metal:
		mode = metal.ModeOn
	case p != "":
		mode = metal.ModeOff
	}
	gpu, _, err := metal.Start(mode)
	if err != nil {
		return nil, err
	}
	var acc kernels.Accelerator
	if gpu != nil {
		acc = gpu
		opts = append(opts, kernels.WithAccelerator(gpu))
	}
	if p == "" && gpu != nil && plan == kernels.PlanStatic {
		p = kernels.Metal // the widest path
	}
	var eng *kernels.Engine
	if p != "" {
		eng, err = kernels.New(append(opts, kernels.WithPath(p))...)
	} else {
		th := threads
		if th == 0 {
			th = runtime.GOMAXPROCS(0)
		}
		var pl kernels.Plan
		if pl, err = kernels.LoadPlan(context.Background(), kernels.PlanConfig{Mode: plan, Measure: measureFor(mc, th, acc)}); err == nil {
			eng, err = kernels.New(append(opts, kernels.WithPlan(pl))...)
		}
	}
	if err != nil {
		if gpu != nil {
			_ = gpu.Close()
		}
		return nil, err
	}
	return &localEngine{Engine: eng, gpu: gpu}, nil
}
