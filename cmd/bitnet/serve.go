package main

// `bitnet serve <service>` and the flags it shares with `bitnet up`. Every
// flag can also come from the environment (the flag wins):
//
//	--grpc           BITNET_GRPC_ADDR
//	--http           BITNET_HTTP_ADDR   ("-" disables REST)
//	--data           BITNET_DATA
//	--consul         CONSUL_HTTP_ADDR
//	--advertise      POD_IP
//	--kernel         BITNET_KERNEL
//	--threads        BITNET_THREADS
//	--kv-cache       BITNET_KV_CACHE    (f16 or f32)
//	--huge-pages     BITNET_HUGE_PAGES  (true or false)
//	--memory-budget  BITNET_MEMORY_BUDGET
//	--node-name      BITNET_NODE_NAME
//	--registry       BITNET_REGISTRY_ADDR
//	--log-json       BITNET_LOG_JSON
//	--log-level      BITNET_LOG_LEVEL

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/bitnet-mesh/bitnet-mesh/services/mesh"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/logging"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// meshFlags are the flags of `up` and `serve`.
type meshFlags struct {
	grpc, http, data, consul, advertise  string
	kernel, nodeName, registry, logLevel string
	kvCache, kernelPlan, head            string
	threads                              int
	memoryBudget                         int64
	logJSON, hugePages                   bool
	drain                                time.Duration
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// addMeshFlags registers the flags; env values that do not parse are
// reported by parse (flag defaults must be typed, so numbers and booleans
// are read as strings first).
func addMeshFlags(fs *flag.FlagSet, serve bool) (*meshFlags, func() error) {
	f := &meshFlags{}
	fs.StringVar(&f.grpc, "grpc", envOr("BITNET_GRPC_ADDR", "127.0.0.1:50051"), "gRPC listen address (env BITNET_GRPC_ADDR)")
	fs.StringVar(&f.http, "http", envOr("BITNET_HTTP_ADDR", "127.0.0.1:8080"), `REST listen address, "-" for none (env BITNET_HTTP_ADDR)`)
	fs.StringVar(&f.data, "data", envOr("BITNET_DATA", mesh.DefaultDataDir()), "data directory: registry store, model cache (env BITNET_DATA)")
	consulDef := ""
	if serve {
		consulDef = os.Getenv("CONSUL_HTTP_ADDR") // `up` uses in-process discovery unless asked
	}
	fs.StringVar(&f.consul, "consul", consulDef, "Consul agent HTTP address (serve: env CONSUL_HTTP_ADDR)")
	fs.StringVar(&f.advertise, "advertise", os.Getenv("POD_IP"), "host other services dial (env POD_IP; default the listener's host)")
	fs.StringVar(&f.kernel, "kernel", os.Getenv("BITNET_KERNEL"), "cap the inference kernel path: generic, avx2, avx512 or neon (env BITNET_KERNEL)")
	fs.StringVar(&f.head, "head", envOr(model.EnvHeadFormat, string(model.DefaultHeadFormat)), "output head storage: int8, int6 or int4 (fewer bytes per token, small perplexity cost) (env "+model.EnvHeadFormat+")")
	planDef := "static" // up: a demo mesh starts at once
	if serve {
		planDef = "auto"
	}
	fs.StringVar(&f.kernelPlan, "kernel-plan", envOr(kernels.EnvPlan, planDef),
		"how an uncapped inference node picks kernels per operation: auto (measure once per CPU and binary, cached), refresh (measure again) or static (widest path, no measuring) (env "+kernels.EnvPlan+")")
	fs.StringVar(&f.nodeName, "node-name", os.Getenv("BITNET_NODE_NAME"), "discovery ID and node name (env BITNET_NODE_NAME; default SERVICE-HOST-PORT)")
	fs.StringVar(&f.registry, "registry", os.Getenv("BITNET_REGISTRY_ADDR"), "registry gRPC address for quantizer/inference (env BITNET_REGISTRY_ADDR; default: discovered bitnet-registry)")
	fs.StringVar(&f.logLevel, "log-level", envOr("BITNET_LOG_LEVEL", "info"), "debug, info, warn or error (env BITNET_LOG_LEVEL)")
	fs.DurationVar(&f.drain, "drain", 0, "time NOT_SERVING before stopping on SIGTERM")
	threads := fs.String("threads", envOr("BITNET_THREADS", "0"), "inference worker threads, 0 = all cores (env BITNET_THREADS)")
	fs.StringVar(&f.kvCache, "kv-cache", envOr("BITNET_KV_CACHE", "f16"), "inference KV cache element type: f16 or f32 (env BITNET_KV_CACHE)")
	budget := fs.String("memory-budget", envOr("BITNET_MEMORY_BUDGET", "0"), "bytes of loaded models per node, 0 = half the memory (env BITNET_MEMORY_BUDGET)")
	hugeEnv := os.Getenv("BITNET_HUGE_PAGES")
	hugeDef, hugeErr := true, error(nil)
	if hugeEnv != "" {
		hugeDef, hugeErr = strconv.ParseBool(hugeEnv)
	}
	fs.BoolVar(&f.hugePages, "huge-pages", hugeDef, "back inference weights with transparent huge pages, Linux (env BITNET_HUGE_PAGES)")
	jsonEnv := os.Getenv("BITNET_LOG_JSON")
	jsonDef, jsonErr := false, error(nil)
	if jsonEnv != "" {
		jsonDef, jsonErr = strconv.ParseBool(jsonEnv)
	}
	fs.BoolVar(&f.logJSON, "log-json", jsonDef, "JSON logs (env BITNET_LOG_JSON)")
	parse := func() error {
		if jsonErr != nil {
			return fmt.Errorf("BITNET_LOG_JSON=%q: want true or false", jsonEnv)
		}
		if hugeErr != nil {
			return fmt.Errorf("BITNET_HUGE_PAGES=%q: want true or false", hugeEnv)
		}
		var err error
		if f.threads, err = strconv.Atoi(*threads); err != nil || f.threads < 0 {
			return fmt.Errorf("--threads %q: want a count >= 0", *threads)
		}
		if f.memoryBudget, err = strconv.ParseInt(*budget, 10, 64); err != nil || f.memoryBudget < 0 {
			return fmt.Errorf("--memory-budget %q: want bytes >= 0", *budget)
		}
		if _, err := model.ParseKVType(f.kvCache); err != nil {
			return fmt.Errorf("--kv-cache: %w", err)
		}
		if f.kernel != "" {
			if _, err := kernels.ParsePath(f.kernel); err != nil {
				return fmt.Errorf("--kernel: %w", err)
			}
		}
		if _, err := kernels.ParsePlanMode(f.kernelPlan); err != nil {
			return fmt.Errorf("--kernel-plan: %w", err)
		}
		if _, err := kernels.ParseHeadFormat(f.head); err != nil {
			return fmt.Errorf("--head: %w", err)
		}
		return nil
	}
	return f, parse
}

// config turns the flags into a mesh.Config with its discovery registry
// (Consul when --consul is set, else nil) and logger.
func (f *meshFlags) config() (mesh.Config, error) {
	log, err := logging.New(f.logLevel, f.logJSON)
	if err != nil {
		return mesh.Config{}, err
	}
	cfg := mesh.Config{
		GRPCAddr: f.grpc, HTTPAddr: f.http, DataDir: f.data, Advertise: f.advertise,
		NodeName: f.nodeName, Kernel: kernels.Path(f.kernel), Threads: f.threads, KVCache: f.kvCache, KernelPlan: planMode(f.kernelPlan), HeadFormat: headFormat(f.head), NoHugePages: !f.hugePages,
		MemoryBudget: f.memoryBudget, RegistryAddr: f.registry, Logger: log,
		Version: version, DrainTimeout: f.drain,
	}
	if f.http == "" {
		cfg.HTTPAddr = "-"
	}
	if f.consul != "" {
		c, err := discovery.NewConsul(f.consul, discovery.WithLogger(log))
		if err != nil {
			return mesh.Config{}, err
		}
		cfg.Discovery = c
	}
	return cfg, nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bitnet serve registry|quantizer|trainer|inference|router [flags]")
		fs.PrintDefaults()
	}
	f, check := addMeshFlags(fs, true)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return fmt.Errorf("serve: want one service name, got %d arguments", len(pos))
	}
	kind, err := mesh.ParseKind(pos[0])
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if err := check(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	cfg, err := f.config()
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer cfg.Logger.Sync() //nolint:errcheck // stderr may not sync
	if cfg.Discovery == nil && cfg.RegistryAddr == "" && (kind == mesh.Quantizer || kind == mesh.Inference) {
		return fmt.Errorf("serve %s: no --registry and no --consul (or CONSUL_HTTP_ADDR): cannot find the registry", kind)
	}
	if cfg.Discovery == nil {
		// Alone, without Consul, nothing can find the service: say so, but
		// serve (a registry or router reached by address still works).
		cfg.Logger.Warn("no --consul or CONSUL_HTTP_ADDR: using in-process discovery, other processes will not find this service")
		mem := discovery.NewMemory()
		defer mem.Close()
		cfg.Discovery = mem
	}
	s, err := mesh.Build(kind, cfg)
	if err != nil {
		return fmt.Errorf("serve %s: %w", kind, err)
	}
	fmt.Fprintf(stdout, "bitnet %s serving gRPC on %s", kind, s.Addr())
	if a := s.HTTPAddr(); a != nil {
		fmt.Fprintf(stdout, ", REST on http://%s", a)
	}
	fmt.Fprintln(stdout)
	if err := s.Serve(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("serve %s: %w", kind, err)
	}
	cfg.Logger.Info("stopped", zap.String("service", string(kind)))
	return nil
}

// planMode is --kernel-plan parsed (parse has checked it).
func planMode(s string) kernels.PlanMode {
	m, _ := kernels.ParsePlanMode(s)
	return m
}

// headFormat is --head parsed (parse has checked it).
func headFormat(s string) kernels.HeadFormat {
	f, _ := kernels.ParseHeadFormat(s)
	return f
}
