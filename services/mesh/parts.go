package mesh

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"

	authv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/auth/v1"
	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
	trainerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/trainer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/services/inference"
	"github.com/bitnet-mesh/bitnet-mesh/services/openai"
	"github.com/bitnet-mesh/bitnet-mesh/services/quantizer"
	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
	"github.com/bitnet-mesh/bitnet-mesh/services/router"
	"github.com/bitnet-mesh/bitnet-mesh/services/trainer"
	"github.com/bitnet-mesh/bitnet-mesh/shared/hardware"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/memlimit"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metal"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/server"
)

// gcInterval is how often a registry collects unreferenced blobs, expired
// uploads and crash debris (often: abandoned uploads give their space back
// promptly).
const gcInterval = time.Minute

// uploadRoute is the registry's REST upload route: its bodies may be large
// and NDJSON (see server.WithUploadRoute).
const uploadRoute = "/v1/registry/uploads:stream"

// registryPart opens the store and serves the registry and its key
// service; keysChanged runs after a key is created or revoked. With Auth it
// creates the first admin key (bootstrapAdmin).
func registryPart(cfg Config, id string, keysChanged func()) (*part, error) {
	ropts := []registry.Option{registry.WithValidator(registry.ValidateModelFiles)}
	if cfg.MaxBlobBytes > 0 {
		ropts = append(ropts, registry.WithMaxBlobSize(cfg.MaxBlobBytes))
	}
	if cfg.RegistryQuota > 0 {
		ropts = append(ropts, registry.WithQuota(cfg.RegistryQuota))
	}
	if cfg.RegistryMinFreeBytes != 0 {
		ropts = append(ropts, registry.WithMinFreeBytes(cfg.RegistryMinFreeBytes))
	}
	store, err := registry.Open(cfg.registryDir(), ropts...)
	if err != nil {
		return nil, fmt.Errorf("mesh: registry store in %s: %w", cfg.registryDir(), err)
	}
	var adminFile string
	if cfg.Auth {
		if adminFile, err = bootstrapAdmin(context.Background(), cfg, store); err != nil {
			_ = store.Close()
			return nil, err
		}
	}
	srv := registry.NewServer(store)
	keys := registry.NewKeyServer(store, keysChanged)
	return &part{
		kind: Registry, id: id, extra: store, adminKeyFile: adminFile,
		run: func(ctx context.Context) {
			_ = store.RunGC(ctx, gcInterval, func(rep registry.GCReport, err error) {
				if err != nil {
					cfg.Logger.Warn("registry gc failed", zap.Error(err))
				} else if len(rep.Blobs)+len(rep.Uploads)+rep.OrphanFiles > 0 {
					cfg.Logger.Info("registry gc", zap.Int("blobs", len(rep.Blobs)), zap.Int64("bytes_freed", rep.BytesFreed),
						zap.Int("uploads", len(rep.Uploads)), zap.Int("orphan_files", rep.OrphanFiles))
				}
			})
		},
		opts: []server.Option{
			server.WithRegister(func(g *grpc.Server) { srv.Register(g); keys.Register(g) }),
			server.WithGateway(registryv1.RegisterRegistryServiceHandler),
			server.WithGateway(authv1.RegisterKeyServiceHandler),
			server.WithUploadRoute(uploadRoute),
		},
		closers: []func() error{store.Close},
	}, nil
}

// quantizerPart reads and writes the registry in process when reg (the
// registry part of the same Service) is set, else over gRPC.
func quantizerPart(cfg Config, sec security, id string, reg *part) (*part, error) {
	p := &part{kind: Quantizer, id: id}
	var src quantizer.Source
	var sink quantizer.Sink
	if reg != nil {
		b := registry.NewBackend(reg.extra.(*registry.Store))
		src, sink = b, b
	} else {
		conn := newRegConn(cfg.RegistryAddr, cfg.Discovery, cfg.registryOptions(sec))
		p.closers = append(p.closers, conn.Close)
		b := registry.NewClient(conn.client, filepath.Join(cfg.workDir(), "upload"))
		src, sink = b, b
	}
	qopts := []quantizer.Option{quantizer.WithWorkDir(cfg.workDir()), quantizer.WithLogger(cfg.Logger),
		quantizer.WithJobStore(filepath.Join(cfg.workDir(), "quantizer", "jobs.db")), quantizer.WithRetention(cfg.JobRetention)}
	jb, err := memoryBudget(cfg, cfg.JobMemoryBudget, id, "job memory budget")
	if err != nil {
		return nil, err
	}
	if jb > 0 {
		qopts = append(qopts, quantizer.WithMemoryBudget(jb))
	}
	if cfg.I2SBlock != 0 {
		qopts = append(qopts, quantizer.WithI2SBlock(cfg.I2SBlock))
	}
	q, err := quantizer.New(src, sink, qopts...)
	if err != nil {
		closeAll(p.closers)
		return nil, fmt.Errorf("mesh: %w", err)
	}
	srv := quantizer.NewServer(q)
	p.closers = append(p.closers, q.Close)
	p.opts = []server.Option{
		server.WithRegister(func(g *grpc.Server) { srv.Register(g) }),
		server.WithGateway(quantizerv1.RegisterQuantizerServiceHandler),
	}
	return p, nil
}

// modelPlanner measures the one-token kernel classes on a model's own
// shapes before it loads (cached like the node's plan) and has eng run
// those shapes on what was measured: the node's plan was measured on the
// reference shapes (BitNet b1.58 2B4T's), which is what it advertises.
func modelPlanner(cfg Config, id string, eng *kernels.Engine, threads int) func(context.Context, model.Config) error {
	return func(ctx context.Context, c model.Config) error {
		shapes := c.LinearShapes()
		p, err := kernels.LoadPlan(ctx, kernels.PlanConfig{Mode: cfg.KernelPlan, Measure: kernels.MeasureConfig{
			Threads: threads, Shapes: shapes, Classes: []kernels.Class{kernels.GEMVMemory, kernels.GEMVCache}}})
		if err != nil {
			return fmt.Errorf("kernel plan on %v: %w", shapes, err)
		}
		if err := eng.AdoptShapes(p, shapes); err != nil {
			return fmt.Errorf("kernel plan on %v: %w", shapes, err)
		}
		var b strings.Builder
		for _, sh := range shapes {
			fmt.Fprintf(&b, "%dx%d=%s ", sh[0], sh[1], p.VariantFor(kernels.GEMVMemory, sh[0], sh[1]))
		}
		cfg.Logger.Info("kernel plan on the model's shapes", zap.String("node", id), zap.String("gemv_dram", strings.TrimSpace(b.String())), zap.String("source", p.Source))
		return nil
	}
}

func inferencePart(cfg Config, sec security, id, addr string) (_ *part, err error) {
	p := &part{kind: Inference, id: id}
	defer func() {
		if err != nil {
			closeAll(p.closers)
		}
	}()
	gpu, gpuInfo, err := inferenceGPU(cfg, id)
	if err != nil {
		return nil, err
	}
	if gpu != nil {
		p.closers = append(p.closers, gpu.Close) // after the engine's (closers run last first)
	}
	capPath := cfg.Kernel
	if capPath == kernels.Metal {
		capPath = "" // products on the GPU, the rest on the best CPU path
	}
	hw, err := hardware.Detect(hardware.WithKernelCap(capPath))
	if err != nil {
		return nil, fmt.Errorf("mesh: inference node %s: %w", id, err)
	}
	eopts := []kernels.Option{kernels.WithThreads(cfg.Threads)}
	var acc kernels.Accelerator
	if gpu != nil {
		acc = gpu
		eopts = append(eopts, kernels.WithAccelerator(gpu))
	}
	runsGPU, measured := false, false
	threads := cfg.Threads
	if threads < 1 {
		threads = runtime.GOMAXPROCS(0)
	}
	if mode := cfg.KernelPlan; cfg.Kernel != "" || mode == "" || mode == kernels.PlanStatic {
		path := hw.BestKernel
		if gpu != nil { // the widest path: every product on the GPU
			path, runsGPU = kernels.Metal, true
		}
		eopts = append(eopts, kernels.WithPath(path))
	} else {
		// Measured per operation class (cached per CPU and binary), and
		// advertised: the router ranks nodes by these speeds.
		plan, err := kernels.LoadPlan(context.Background(), kernels.PlanConfig{Mode: mode, Measure: kernels.MeasureConfig{Threads: threads, HeadFormat: cfg.HeadFormat, Accelerator: acc}})
		if err != nil {
			return nil, fmt.Errorf("mesh: inference node %s: kernel plan: %w", id, err)
		}
		eopts = append(eopts, kernels.WithPlan(plan))
		runsGPU = plan.UsesAccelerator()
		measured = !runsGPU
		hw = hw.WithPerf(hardware.MeasurePerf(plan, threads))
		cfg.Logger.Info("kernel plan", zap.String("node", id), zap.Stringer("plan", plan),
			zap.Float64("read_gbps", hw.Perf.ReadGBps), zap.Float64("decode_tok_s", hw.Perf.DecodeTokS), zap.Float64("prefill_tok_s", hw.Perf.PrefillTokS))
	}
	hw = hw.WithMetal(gpuInfo, runsGPU)
	eng, err := kernels.New(eopts...)
	if err != nil {
		return nil, fmt.Errorf("mesh: inference node %s: kernel engine %s: %w", id, hw.BestKernel, err)
	}
	p.closers = append(p.closers, func() error { eng.Close(); return nil })
	conn := newRegConn(cfg.RegistryAddr, cfg.Discovery, cfg.registryOptions(sec))
	p.closers = append(p.closers, conn.Close)
	opts := []inference.Option{
		inference.WithNodeName(id), inference.WithAddress(addr), inference.WithVersion(cfg.Version),
		inference.WithEngine(eng), inference.WithHardware(hw), inference.WithLogger(cfg.Logger),
		inference.WithMetrics(cfg.Metrics),
	}
	if measured {
		opts = append(opts, inference.WithManager(inference.WithModelPlanner(modelPlanner(cfg, id, eng, threads))))
	}
	if cfg.KVCache != "" {
		kv, err := model.ParseKVType(cfg.KVCache)
		if err != nil {
			return nil, fmt.Errorf("mesh: %w", err)
		}
		opts = append(opts, inference.WithKVType(kv))
	}
	if cfg.NoHugePages {
		opts = append(opts, inference.WithManager(inference.WithModelOptions(model.WithHugePages(false))))
	}
	if cfg.HeadFormat != "" {
		opts = append(opts, inference.WithManager(inference.WithModelOptions(model.WithHeadFormat(cfg.HeadFormat))))
	}
	budget, err := memoryBudget(cfg, cfg.MemoryBudget, id, "memory budget")
	if err != nil {
		return nil, err
	}
	opts = append(opts, inference.WithManager(inference.WithMemoryBudget(budget)))
	if cfg.MaxBatch > 0 {
		// The step's token budget holds at least one decode token per
		// sequence.
		opts = append(opts, inference.WithScheduler(inference.WithMaxBatch(cfg.MaxBatch),
			inference.WithMaxBatchTokens(max(256, cfg.MaxBatch))))
	}
	if cfg.MaxQueue > 0 {
		opts = append(opts, inference.WithQueueSize(cfg.MaxQueue))
	}
	if cfg.PrefillChunk > 0 {
		opts = append(opts, inference.WithScheduler(inference.WithPrefillChunk(cfg.PrefillChunk)))
	}
	if cfg.I2SBlock != 0 {
		opts = append(opts, inference.WithManager(inference.WithModelOptions(model.WithI2SBlock(cfg.I2SBlock))))
	}
	srv, err := inference.NewServer(newRegistryFetcher(conn, filepath.Join(cfg.cacheDir(), id)), opts...)
	if err != nil {
		return nil, fmt.Errorf("mesh: %w", err)
	}
	p.closers = append(p.closers, srv.Close)
	start := time.Now()
	read := func() router.NodeMeta { return nodeMeta(srv, cfg.Version, start) }
	p.extra = srv
	p.meta = func() map[string]string { return read().Meta() }
	p.opts = []server.Option{server.WithRegister(func(g *grpc.Server) { srv.Register(g) })}
	p.run = func(ctx context.Context) {
		if err := router.PublishMeta(ctx, cfg.Discovery, id, cfg.PublishInterval, read); err != nil {
			cfg.Logger.Warn("meta publishing stopped", zap.String("id", id), zap.Error(err))
		}
	}
	return p, nil
}

// memoryBudget is set when positive, else memlimit's default from the
// container's cgroup limit (80%), or half the host's memory, read under
// cfg.MemoryRoot; 0 when neither is known.
func memoryBudget(cfg Config, set int64, id, what string) (int64, error) {
	if set > 0 {
		return set, nil
	}
	var mopts []memlimit.Option
	if cfg.MemoryRoot != "" {
		mopts = append(mopts, memlimit.WithRoot(cfg.MemoryRoot))
	}
	lim, err := memlimit.Detect(mopts...)
	if err != nil {
		return 0, fmt.Errorf("mesh: %s %s: %w", id, what, err)
	}
	b := lim.Budget()
	cfg.Logger.Info("memory budget from the memory limit", zap.String("id", id), zap.String("budget", what),
		zap.Int64("budget_bytes", b), zap.Int64("limit_bytes", lim.Bytes), zap.String("limit_source", string(lim.Source)))
	return b, nil
}

// inferenceGPU opens the node's GPU as cfg.Metal and cfg.Kernel ask (a
// CPU kernel cap keeps it off, kernels.Metal requires it) and self-tests
// it: only a GPU that computes exactly what the CPU computes is used, and
// advertised. Without one the node serves on the CPU and logs why.
func inferenceGPU(cfg Config, id string) (*metal.GPU, metal.Info, error) {
	mode := cfg.Metal
	switch {
	case cfg.Kernel == kernels.Metal:
		mode = metal.ModeOn
	case cfg.Kernel != "":
		mode = metal.ModeOff
	}
	gpu, info, err := metal.Start(mode)
	if err != nil {
		return nil, info, fmt.Errorf("mesh: inference node %s: %w", id, err)
	}
	switch {
	case gpu != nil:
		st := gpu.Stats()
		cfg.Logger.Info("metal GPU passed its self-test", zap.String("node", id), zap.String("device", info.Device),
			zap.Int64("scratch_bytes", st.ScratchBytes))
	case mode != metal.ModeOff && info.Device != "": // a Mac whose GPU cannot be used
		cfg.Logger.Warn("metal unavailable, serving on the CPU", zap.String("node", id), zap.String("device", info.Device),
			zap.String("reason", info.Reason))
	}
	return gpu, info, nil
}

// nodeMeta is what an inference node advertises: hardware, loaded models
// and load.
func nodeMeta(s *inference.Server, version string, start time.Time) router.NodeMeta {
	m := router.NodeMeta{Hardware: s.Hardware(), Version: version, StartTime: start}
	for _, li := range s.Manager().Loaded() {
		m.LoadedModels = append(m.LoadedModels, li.Ref)
	}
	l := s.LoadProto()
	m.Inflight, m.QueueDepth, m.QueueCapacity = int(l.GetActiveRequests()), int(l.GetQueueDepth()), int(l.GetQueueCapacity())
	m.P50FirstTokenMS, m.TokensPerSecond = l.GetP50FirstTokenMs(), l.GetTokensPerSecond()
	budget, used := s.Manager().Budget()
	m.MemoryBudget, m.MemoryUsed = uint64(max(budget, 0)), uint64(max(used, 0))
	return m
}

// routerPart serves the router and, on the same REST port, the
// OpenAI-compatible API over it. GET /v1/models lists the registry: the
// one in the same Service (reg, in `bitnet up`) over the server's own
// connection, else the one discovery finds.
func routerPart(cfg Config, sec security, id string, reg *part) (*part, error) {
	r, err := router.New(router.WithRegistry(cfg.Discovery), router.WithLogger(cfg.Logger),
		router.WithMetrics(cfg.Metrics), router.WithTracing(cfg.Tracing), router.WithIdentity(id, cfg.Version),
		router.WithDialOptions(sec.nodeDialOptions()...))
	if err != nil {
		return nil, fmt.Errorf("mesh: %w", err)
	}
	p := &part{
		kind: Router, id: id, extra: r,
		opts:    r.ServerOptions(),
		ready:   r.Ready,
		start:   r.Start,
		closers: []func() error{r.Close},
	}
	var remote *regConn
	if reg == nil {
		remote = newRegConn(cfg.RegistryAddr, cfg.Discovery, cfg.registryOptions(sec))
		p.closers = append(p.closers, remote.Close)
	}
	p.opts = append(p.opts, server.WithConnHandlers(func(conn grpc.ClientConnInterface) []server.HTTPRoute {
		models := openai.RegistryModels(registryv1.NewRegistryServiceClient(conn))
		if remote != nil {
			models = openai.ModelsFunc(func(ctx context.Context) ([]openai.Model, error) {
				c, err := remote.client(ctx)
				if err != nil {
					return nil, err
				}
				return openai.RegistryModels(c.RPC()).List(ctx)
			})
		}
		h := openai.New(inferencev1.NewInferenceServiceClient(conn), openai.WithLogger(cfg.Logger), openai.WithModels(models))
		var routes []server.HTTPRoute
		for _, rt := range h.Routes() {
			routes = append(routes, server.HTTPRoute{Pattern: rt.Pattern, Handler: rt.Handler, Errors: openai.WriteError})
		}
		return routes
	}))
	return p, nil
}

func closeAll(cs []func() error) {
	for i := len(cs) - 1; i >= 0; i-- {
		_ = cs[i]()
	}
}

// trainerPart runs QAT jobs locally; like the quantizer it reads and writes
// the registry in process when reg is set, else over gRPC.
func trainerPart(cfg Config, sec security, id string, reg *part) (*part, error) {
	p := &part{kind: Trainer, id: id}
	var src trainer.Source
	var sink trainer.Sink
	if reg != nil {
		b := registry.NewBackend(reg.extra.(*registry.Store))
		src, sink = b, b
	} else {
		conn := newRegConn(cfg.RegistryAddr, cfg.Discovery, cfg.registryOptions(sec))
		p.closers = append(p.closers, conn.Close)
		b := registry.NewClient(conn.client, filepath.Join(cfg.workDir(), "trainer-upload"))
		src, sink = b, b
	}
	topts := []trainer.Option{trainer.WithWorkDir(filepath.Join(cfg.workDir(), "trainer")), trainer.WithLogger(cfg.Logger),
		trainer.WithRetention(cfg.JobRetention)}
	jb, err := memoryBudget(cfg, cfg.JobMemoryBudget, id, "job memory budget")
	if err != nil {
		return nil, err
	}
	if jb > 0 {
		topts = append(topts, trainer.WithMemoryBudget(jb))
	}
	t, err := trainer.New(src, sink, topts...)
	if err != nil {
		closeAll(p.closers)
		return nil, fmt.Errorf("mesh: %w", err)
	}
	srv := trainer.NewServer(t)
	p.closers = append(p.closers, t.Close)
	p.opts = []server.Option{
		server.WithRegister(func(g *grpc.Server) { srv.Register(g) }),
		server.WithGateway(trainerv1.RegisterTrainerServiceHandler),
	}
	return p, nil
}
