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
	MemoryBudget = Bytes("memory-budget", "BITNET_MEMORY_BUDGET", 0, "bytes an inference node's models may take, weights plus KV cache for --max-batch full-context sequences each; "+
		"0 = 80% of the container's memory limit (cgroup), else half the host's memory (e.g. 8GiB)").
		Check(AtLeast[int64](0))
	MaxBatch = Int("max-batch", "BITNET_MAX_BATCH", 16, "sequences an inference node decodes together per model (each holds a KV cache)").
			Check(Between(1, 4096))
	MaxQueue = Int("max-queue", "BITNET_MAX_QUEUE", 64, "requests waiting per model beyond the batch; more are refused with RESOURCE_EXHAUSTED").
			Check(Between(1, 1<<20))
	PrefillChunk = Int("prefill-chunk", "BITNET_PREFILL_CHUNK", 64, "prompt tokens one sequence feeds per step (smaller: decoding sequences wait less behind long prompts)").
			Check(Between(1, 1<<16))
	LogLevel = String("log-level", "BITNET_LOG_LEVEL", "info", "log level").OneOf("debug", "info", "warn", "error")
	LogJSON  = Bool("log-json", "BITNET_LOG_JSON", false, "JSON logs")
	Drain    = Duration("drain", "BITNET_DRAIN", 0, "on SIGTERM, report NOT_SERVING this long before stopping").
			Check(AtLeast[time.Duration](0))
	Console = Bool("console", "BITNET_CONSOLE", true, "serve the web console at / of the router's REST port")

	// Limits (up, serve): what one client can make a service spend
	// (shared/server.Limits, the registry's space, the jobs' memory).
	MaxBodyBytes = Bytes("max-body-bytes", "BITNET_MAX_BODY_BYTES", 4<<20, "largest REST request body, 413 beyond (e.g. 4MiB)").
			Check(AtLeast[int64](1))
	MaxUploadBodyBytes = Bytes("max-upload-body-bytes", "BITNET_MAX_UPLOAD_BODY_BYTES", 1<<30, "largest body of one REST upload request (uploads resume: a blob may take several)").
				Check(AtLeast[int64](1))
	BodyReadTimeout = Duration("body-read-timeout", "BITNET_BODY_READ_TIMEOUT", 10*time.Second, "longest wait for request body bytes; past it a body must also keep --min-body-rate (408 otherwise)").
			Check(AtLeast[time.Duration](time.Millisecond))
	MinBodyRate = Bytes("min-body-rate", "BITNET_MIN_BODY_RATE", 1<<10, "slowest a request body may arrive, in bytes per second of waiting").
			Check(AtLeast[int64](1))
	ReadHeaderTimeout = Duration("read-header-timeout", "BITNET_READ_HEADER_TIMEOUT", 10*time.Second, "longest time to read a REST request's headers").
				Check(AtLeast[time.Duration](time.Millisecond))
	IdleTimeout = Duration("idle-timeout", "BITNET_IDLE_TIMEOUT", 120*time.Second, "close keep-alive REST connections idle this long").
			Check(AtLeast[time.Duration](time.Millisecond))
	MaxHeaderBytes = Bytes("max-header-bytes", "BITNET_MAX_HEADER_BYTES", 64<<10, "largest REST request headers").
			Check(Between[int64](1<<10, 1<<30))
	GRPCMaxRecvBytes = Bytes("grpc-max-recv-bytes", "BITNET_GRPC_MAX_RECV_BYTES", 8<<20, "largest gRPC message received").
				Check(Between[int64](1<<10, 1<<31-1))
	MaxStreams = Int("max-streams", "BITNET_MAX_STREAMS", 1024, "concurrent streams per gRPC or HTTP/2 connection").
			Check(Between(1, 1<<20))
	GRPCKeepaliveMinTime = Duration("grpc-keepalive-min-time", "BITNET_GRPC_KEEPALIVE_MIN_TIME", 10*time.Second, "shortest interval between a client's keepalive pings (more often: disconnected)").
				Check(AtLeast[time.Duration](time.Millisecond))
	CORSOrigins  = String("cors-origins", "BITNET_CORS_ORIGINS", "", "comma-separated browser origins allowed to call the REST API (* for any); none: CORS off")
	MaxBlobBytes = Bytes("max-blob-bytes", "BITNET_MAX_BLOB_BYTES", 256<<30, "largest registry blob").
			Check(AtLeast[int64](1))
	RegistryQuota = Bytes("registry-quota", "BITNET_REGISTRY_QUOTA", 0, "bytes the registry may hold, blobs plus unfinished uploads, 0 = no quota").
			Check(AtLeast[int64](0))
	RegistryMinFree = Bytes("registry-min-free", "BITNET_REGISTRY_MIN_FREE", 1<<30, "free space the registry leaves on its disk (uploads that would take it below are refused), 0 = none").
			Check(AtLeast[int64](0))
	JobMemoryBudget = Bytes("job-memory-budget", "BITNET_JOB_MEMORY_BUDGET", 0, "memory one quantize or train job may need (checked from the model's shapes), 0 = 80% of the container's memory limit, else half the host's memory").
			Check(AtLeast[int64](0))
	JobRetention = Duration("job-retention", "BITNET_JOB_RETENTION", 7*24*time.Hour, "keep finished quantize and train jobs (state, report, log) this long, 0 = until the 1000 newest push them out").
			Check(AtLeast[time.Duration](0))
	// Access control and TLS (up, serve; the credentials and TLS ones also
	// clients).
	Auth = Bool("auth", "BITNET_AUTH", false, "require API keys on every call but health checks; "+
		"a registry's first start writes an admin key to DATA/admin.key")
	Insecure = Bool("insecure", "BITNET_INSECURE", false,
		"serve on a non-loopback address without --auth or --tls-client-ca (anyone who reaches it may call everything)")
	APIKey = String("api-key", "BITNET_API_KEY", "", "API key (bnk_...) sent with every call; "+
		"services use theirs to read keys and models from the registry")
	AdminKey = String("admin-key", "BITNET_ADMIN_KEY", "", "admin key a registry's first start with --auth stores "+
		"(instead of a random one in DATA/admin.key); make one with 'bitnet keys generate'")
	TLS     = Bool("tls", "BITNET_TLS", false, "connect with TLS (implied by --tls-ca and --tls-cert)")
	TLSCert = String("tls-cert", "BITNET_TLS_CERT", "", "PEM certificate of this process: served by up and serve "+
		"(reloaded when the file changes), presented to servers that ask for a client certificate")
	TLSKey      = String("tls-key", "BITNET_TLS_KEY", "", "PEM private key of --tls-cert")
	TLSCA       = String("tls-ca", "BITNET_TLS_CA", "", "PEM CA bundle that verifies the servers this process calls (default: the system's)")
	TLSClientCA = String("tls-client-ca", "BITNET_TLS_CLIENT_CA", "", "PEM CA that client certificates must chain to: "+
		"turns mTLS on (every call but health checks needs one)")
	TLSServerName = String("tls-server-name", "BITNET_TLS_SERVER_NAME", "", "name servers' certificates are verified against (default: the host dialed)")
	MetricsAddr   = String("metrics-addr", "BITNET_METRICS_ADDR", "", "serve /metrics on its own plain-HTTP listener instead of the REST port")
	Reflection    = Bool("reflection", "BITNET_REFLECTION", true, "gRPC server reflection (needs scope read with --auth)")
	RateLimit     = Float("rate-limit", "BITNET_RATE_LIMIT", 0, "requests per second per API key, for keys without their own; 0 = no limit").
			Check(AtLeast(0.0))
	RateBurst = Int("rate-burst", "BITNET_RATE_BURST", 0, "request burst per API key (0: the rate rounded up)").
			Check(AtLeast(0))
	TokensPerMinute = Int("tokens-per-minute", "BITNET_TOKENS_PER_MINUTE", 0, "generated tokens per minute per API key; 0 = no limit").
			Check(AtLeast(0))
	KeyMaxStreams = Int("max-streams-per-key", "BITNET_MAX_STREAMS_PER_KEY", 0, "concurrent streams per API key; 0 = no limit").
			Check(AtLeast(0))
	KeyMaxStale = Duration("key-max-stale", "BITNET_KEY_MAX_STALE", 5*time.Minute,
		"how long known API keys keep working while the registry is unreachable; then calls fail closed").
		Check(AtLeast(time.Second))

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
	// I2SBlock: the block size of bitnet.cpp I2_S tensors in GGUF files
	// (shared/model WithI2SBlock; the file does not record it).
	I2SBlock = Int("i2s-block", "BITNET_I2S_BLOCK", 128, "weights per I2_S block in GGUF files loaded here "+
		"(128 from bitnet.cpp's converters and x86 llama-quantize, 64 from an ARM build's llama-quantize; files do not record it)").
		OneOf("128", "64")
	// CPUProfile: a pprof CPU profile of a benchmark (bench model).
	CPUProfile = String("cpuprofile", "BITNET_CPUPROFILE", "", "write a CPU profile of the measured prefill and decode runs (not the load) to this file, FILE.tN per thread count when there are several (go tool pprof)")

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
		Kernel, KernelPlan, Metal, Head, I2SBlock, Threads, KVCache, HugePages, MemoryBudget, MaxBatch, MaxQueue, PrefillChunk, LogLevel, LogJSON, Drain, Console,
		MaxBodyBytes, MaxUploadBodyBytes, BodyReadTimeout, MinBodyRate, ReadHeaderTimeout, IdleTimeout,
		MaxHeaderBytes, GRPCMaxRecvBytes, MaxStreams, GRPCKeepaliveMinTime, CORSOrigins,
		MaxBlobBytes, RegistryQuota, RegistryMinFree, JobMemoryBudget, JobRetention,
		Auth, Insecure, APIKey, AdminKey, TLSCert, TLSKey, TLSCA, TLSClientCA, TLSServerName,
		MetricsAddr, Reflection, RateLimit, RateBurst, TokensPerMinute, KeyMaxStreams, KeyMaxStale}
	// Client is what every command talking to a mesh takes.
	Client = []Any{Remote, Timeout, Quiet, APIKey, TLS, TLSCA, TLSCert, TLSKey, TLSServerName}
	// LocalModel is what commands running a model in process take.
	LocalModel = []Any{Kernel, KernelPlan, Metal, Head, I2SBlock, Threads, KVCache}
	// Profiling is what benchmark commands take besides LocalModel.
	Profiling = []Any{CPUProfile}
)

// All returns every declared setting once, in catalogue order (what
// `bitnet env` lists).
func All() []Any {
	var all []Any
	seen := map[string]bool{}
	for _, g := range [][]Any{Server, Client, LocalModel, Profiling} {
		for _, s := range g {
			if f := s.Info().Flag; !seen[f] {
				seen[f] = true
				all = append(all, s)
			}
		}
	}
	return all
}
