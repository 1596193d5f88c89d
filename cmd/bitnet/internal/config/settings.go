package config

import (
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/services/mesh"
)

// The catalogue: every setting of the bitnet command, declared once. Add a
// setting here and to a group below (see the package doc).
var (
	// Services (up, serve).
	GRPCAddr = String("grpc", "BITNET_GRPC_ADDR", "127.0.0.1:50051", "gRPC listen address")
	HTTPAddr = String("http", "BITNET_HTTP_ADDR", "127.0.0.1:8080", `REST listen address, "-" for none`)
	DataDir  = String("data", "BITNET_DATA", "", "data directory: registry store, model cache, work files").
			DefaultFunc(mesh.DefaultDataDir, "$XDG_DATA_HOME/bitnet or ~/.local/share/bitnet")
	Consul = String("consul", "BITNET_CONSUL_ADDR", "", "Consul agent HTTP address; none: in-process discovery (up does not read CONSUL_HTTP_ADDR)").
		Alias("CONSUL_HTTP_ADDR")
	Advertise = String("advertise", "BITNET_ADVERTISE", "", "host other services dial (default: the listener's host)").
			Alias("POD_IP")
	NodeName     = String("node-name", "BITNET_NODE_NAME", "", "discovery ID and node name (default SERVICE-HOST-PORT)")
	RegistryAddr = String("registry", "BITNET_REGISTRY_ADDR", "", "registry gRPC address for the quantizer and inference nodes (default: a discovered bitnet-registry)")
	MemoryBudget = Bytes("memory-budget", "BITNET_MEMORY_BUDGET", 0, "bytes of loaded models per inference node, 0 = half the memory (e.g. 8GiB)").
			Check(AtLeast[int64](0))
	LogLevel = String("log-level", "BITNET_LOG_LEVEL", "info", "log level").OneOf("debug", "info", "warn", "error")
	LogJSON  = Bool("log-json", "BITNET_LOG_JSON", false, "JSON logs")
	Drain    = Duration("drain", "BITNET_DRAIN", 0, "on SIGTERM, report NOT_SERVING this long before stopping").
			Check(AtLeast[time.Duration](0))

	// Local compute (up, serve, generate, perplexity, bench model, train).
	Kernel = String("kernel", "BITNET_KERNEL", "", "kernel path (default: the best this CPU runs; metal: every product on the Mac's GPU)").
		OneOf("generic", "avx2", "avx512", "neon", "metal")
	// Metal: whether the Apple GPU is used (shared/metal: opened and
	// self-tested against the CPU first; the kernel plan decides per class).
	Metal = String("metal", "BITNET_METAL", "auto",
		"Apple GPU: auto uses it where its self-test passes, on requires it, off never opens it").
		OneOf("auto", "on", "off")
	Threads = Int("threads", "BITNET_THREADS", 0, "worker threads, 0 = all cores").
		Check(Between(0, maxThreads))
	KVCache   = String("kv-cache", "BITNET_KV_CACHE", "f16", "KV cache element type").OneOf("f16", "f32")
	HugePages = Bool("huge-pages", "BITNET_HUGE_PAGES", true, "back model weights with transparent huge pages (Linux)")
	// KernelPlan: how kernels are picked per operation class without --kernel
	// (shared/kernels LoadPlan: measured once per CPU and binary, cached).
	KernelPlan = String("kernel-plan", "BITNET_KERNEL_PLAN", "auto",
		"how kernels are picked per operation class without --kernel; auto measures once per CPU and binary and caches the plan, refresh measures again, static takes the widest path").
		OneOf("auto", "refresh", "static")
	// Head: the output head's storage (shared/model DefaultHeadFormat; docs/perf.md).
	Head = String("head", "BITNET_HEAD", "int6", "output head storage (fewer bits read fewer bytes per token; perplexity cost in docs/perf.md)").
		OneOf("int8", "int6", "int4")

	// Clients (push, pull, models, nodes, quantize, generate --remote).
	Remote  = String("remote", "BITNET_REMOTE", "127.0.0.1:50051", "gRPC address of the mesh")
	Timeout = Duration("timeout", "BITNET_TIMEOUT", 0, "give up after this long, 0 = no limit").
		Check(AtLeast[time.Duration](0))
	Quiet = Bool("quiet", "BITNET_QUIET", false, "no progress output on stderr")
)

// maxThreads bounds --threads: shared/kernels' worker pool limit.
const maxThreads = 4096

// Groups: the settings a kind of command binds.
var (
	// Server is what `up` and `serve` take.
	Server = []Any{GRPCAddr, HTTPAddr, DataDir, Consul, Advertise, NodeName, RegistryAddr,
		Kernel, KernelPlan, Metal, Head, Threads, KVCache, HugePages, MemoryBudget, LogLevel, LogJSON, Drain}
	// Client is what every command talking to a mesh takes.
	Client = []Any{Remote, Timeout, Quiet}
	// LocalModel is what commands running a model in process take.
	LocalModel = []Any{Kernel, KernelPlan, Metal, Head, Threads, KVCache}
)

// All returns every declared setting once, in catalogue order (what
// `bitnet env` lists).
func All() []Any {
	var all []Any
	seen := map[string]bool{}
	for _, g := range [][]Any{Server, Client, LocalModel} {
		for _, s := range g {
			if f := s.Info().Flag; !seen[f] {
				seen[f] = true
				all = append(all, s)
			}
		}
	}
	return all
}
