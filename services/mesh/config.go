package mesh

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/bitnet-mesh/bitnet-mesh/shared/auth"
	"github.com/bitnet-mesh/bitnet-mesh/shared/certs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metal"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metrics"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/server"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// Kind names a service of the mesh.
type Kind string

// The services Build can make.
const (
	Registry  Kind = "registry"
	Quantizer Kind = "quantizer"
	Inference Kind = "inference"
	Router    Kind = "router"
	Trainer   Kind = "trainer"
)

// Kinds lists every Kind, in the order `bitnet up` starts them.
func Kinds() []Kind { return []Kind{Registry, Quantizer, Trainer, Inference, Router} }

// ServiceName returns the discovery service name of k (bitnet-<kind>).
func (k Kind) ServiceName() string { return "bitnet-" + string(k) }

// ParseKind checks a service name given on the command line.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds() {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown service %q, want registry, quantizer, trainer, inference or router", s)
}

// Config configures one service (Build) or the whole mesh (Up). The zero
// value of each field means its default.
type Config struct {
	// GRPCAddr and HTTPAddr are the listen addresses (default 127.0.0.1:50051
	// and 127.0.0.1:8080); HTTPAddr "-" disables REST.
	GRPCAddr, HTTPAddr string
	// GRPCListener and HTTPListener, when set, are served instead (tests);
	// the Service owns them (a failed Build closes them).
	GRPCListener, HTTPListener net.Listener
	// DataDir holds the registry store, model cache and work files
	// (default DefaultDataDir()).
	DataDir string
	// Advertise is the host other services dial (default: the listener's
	// host; an unspecified host becomes 127.0.0.1).
	Advertise string
	// NodeName is the discovery instance ID and the node name in responses
	// (default <service>-<host>-<port>).
	NodeName string
	// Kernel caps an inference node's kernel path ("" = the best this CPU
	// runs); kernels.Metal forces the GPU for every product (Metal on).
	Kernel kernels.Path
	// Metal is whether an inference node uses the GPU ("" = metal.ModeAuto:
	// where metal.Open's self-test passes; its kernel plan decides per
	// operation class, a static plan puts every product there). A CPU
	// Kernel cap keeps it off.
	Metal metal.Mode
	// Threads is the inference engine's worker count (0 = all cores).
	Threads int
	// KernelPlan is how an inference node without a Kernel cap picks its
	// kernel variant per operation class (kernels.PlanMode: "auto"
	// measures once per CPU and binary and caches, "refresh" measures
	// again, "" or "static" takes the widest path everywhere and measures
	// nothing). Measured nodes advertise their speeds (hardware.Perf).
	KernelPlan kernels.PlanMode
	// KVCache is an inference node's KV cache element type ("" = f16).
	KVCache string
	// HeadFormat is how inference nodes store output heads
	// ("" = model.DefaultHeadFormat; kernels.HeadFormat int8, int6, int4).
	HeadFormat kernels.HeadFormat
	// I2SBlock is the block size of bitnet.cpp I2_S tensors in the GGUF
	// files inference nodes load (0 = ternary.I2SBlock128; model.WithI2SBlock).
	I2SBlock ternary.I2SBlock
	// NoHugePages keeps an inference node's weights off transparent huge
	// pages (see model.WithHugePages), e.g. where compaction stalls loads.
	NoHugePages bool
	// MemoryBudget bounds an inference node's loaded models in bytes:
	// weights plus the KV cache of MaxBatch sequences of full context each
	// (0 = memlimit's default: 80% of the cgroup limit, else half the
	// host's memory).
	MemoryBudget int64
	// MaxBatch, MaxQueue and PrefillChunk configure an inference node's
	// schedulers (0 = the inference package's defaults: 16, 64, 64).
	MaxBatch, MaxQueue, PrefillChunk int
	// MemoryRoot is where /proc and /sys/fs/cgroup are read for the
	// default memory budget ("" = /; tests point it at real files).
	MemoryRoot string
	// RegistryAddr is the registry's gRPC address for the quantizer and
	// inference nodes (default: a healthy bitnet-registry in Discovery).
	RegistryAddr string
	// Discovery is where services register and find each other (required).
	Discovery discovery.Registry
	// CheckInterval is how often discovery health-checks each service
	// (default discovery.DefaultCheckInterval).
	CheckInterval time.Duration
	// DeregisterAfter removes a service whose check keeps failing (default
	// discovery.DefaultDeregisterAfter).
	DeregisterAfter time.Duration
	// PublishInterval is how often an inference node refreshes its Meta
	// (default 2 s).
	PublishInterval time.Duration
	// DrainTimeout and ShutdownTimeout are shared/server's (default 0 and 10 s).
	DrainTimeout, ShutdownTimeout time.Duration
	// Logger logs (default none).
	Logger *zap.Logger
	// Metrics, when set, is the registry the server exports (default new).
	Metrics *metrics.Registry
	// NoConsole leaves the web console (package console) off the REST port
	// of the router and of Up, where it is served at / by default.
	NoConsole bool
	// Version is the software version services report.
	Version string

	// Limits bounds what one client can make each server spend: REST body
	// size (larger for the registry's upload route) and read time, header
	// size and time, idle connections, gRPC message size, streams per
	// connection and keepalive pings. Zero fields take
	// server.DefaultLimits.
	Limits server.Limits
	// CORSOrigins are the browser origins allowed to call the REST API
	// ("*": any). None (the default) sends no CORS header at all.
	CORSOrigins []string
	// MaxBlobBytes caps one registry blob (0: registry.DefaultMaxBlobSize).
	MaxBlobBytes int64
	// RegistryQuota bounds the registry's stored blobs plus unfinished
	// uploads, in bytes (0: none).
	RegistryQuota int64
	// RegistryMinFreeBytes is the free space the registry leaves on its
	// file system: uploads that would take it below are refused before
	// they write (0: registry.DefaultMinFreeBytes; negative: none).
	RegistryMinFreeBytes int64
	// JobMemoryBudget bounds the memory one quantization or training job
	// may need, estimated from its model's shapes before anything is
	// allocated (0: memlimit's default, as for MemoryBudget).
	JobMemoryBudget int64

	// Auth requires an API key on every call but health checks (package
	// auth); a registry with Auth and no keys creates an admin key at start.
	Auth bool
	// Insecure allows listening on a non-loopback address with neither
	// Auth nor mTLS (refused otherwise).
	Insecure bool
	// APIKey is this service's own key for its calls to the registry (key
	// sync, model downloads, job results); with mTLS its certificate
	// identifies it instead when APIKey is empty.
	APIKey string
	// AdminKey, when set, becomes the admin key a registry creates on its
	// first start with Auth (instead of a random one written to
	// DATA/admin.key): an operator's bootstrap key, e.g. from a Secret.
	AdminKey string
	// TLS names the certificate files: the listeners serve TLS with Cert and
	// Key, calls to other services verify them with CA, and ClientCA turns
	// mTLS on (see package certs).
	TLS certs.Files
	// KeyLimits are the per-key rate limits and quotas of keys created
	// without their own (zero fields: no limit).
	KeyLimits auth.Limits
	// MetricsAddr serves /metrics on a listener of its own instead of the
	// REST port ("" keeps it there).
	MetricsAddr string
	// NoReflection turns gRPC server reflection off.
	NoReflection bool
	// KeyRefresh and KeyMaxStale time the key table (defaults
	// auth.DefaultRefresh and auth.DefaultMaxStale).
	KeyRefresh, KeyMaxStale time.Duration

	// keys, when set, is a key table shared with another Service of the
	// same process (Up's inference node uses the public server's).
	keys *auth.Table
	// quiet: no start-up warnings (Up's internal node repeats the public
	// server's).
	quiet bool
}

// Defaults used when a Config field is zero.
const (
	DefaultPublishInterval = 2 * time.Second
	defaultShutdown        = 10 * time.Second
)

// DefaultDataDir is $XDG_DATA_HOME/bitnet, else ~/.local/share/bitnet, else
// ./bitnet-data when there is no home directory.
func DefaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "bitnet")
	}
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		return filepath.Join(h, ".local", "share", "bitnet")
	}
	return "bitnet-data"
}

func (c Config) withDefaults() Config {
	if c.GRPCAddr == "" {
		c.GRPCAddr = "127.0.0.1:50051"
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8080"
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir()
	}
	if c.CheckInterval <= 0 {
		c.CheckInterval = discovery.DefaultCheckInterval
	}
	if c.DeregisterAfter <= 0 {
		c.DeregisterAfter = discovery.DefaultDeregisterAfter
	}
	if c.PublishInterval <= 0 {
		c.PublishInterval = DefaultPublishInterval
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = defaultShutdown
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Metrics == nil {
		c.Metrics = metrics.NewRegistry()
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.KeyRefresh == 0 {
		c.KeyRefresh = auth.DefaultRefresh
	}
	if c.KeyMaxStale == 0 {
		c.KeyMaxStale = auth.DefaultMaxStale
	}
	return c
}

func (c Config) validate() error {
	if c.KVCache != "" {
		if _, err := model.ParseKVType(c.KVCache); err != nil {
			return fmt.Errorf("mesh: %w", err)
		}
	}
	switch {
	case c.Discovery == nil:
		return fmt.Errorf("mesh: no discovery registry in the config")
	case c.Threads < 0:
		return fmt.Errorf("mesh: %d threads, want >= 0", c.Threads)
	case c.MemoryBudget < 0:
		return fmt.Errorf("mesh: memory budget %d bytes, want >= 0", c.MemoryBudget)
	case c.MaxBatch < 0 || c.MaxQueue < 0 || c.PrefillChunk < 0:
		return fmt.Errorf("mesh: max batch %d, max queue %d, prefill chunk %d: want >= 0", c.MaxBatch, c.MaxQueue, c.PrefillChunk)
	case c.DrainTimeout < 0:
		return fmt.Errorf("mesh: negative drain timeout %v", c.DrainTimeout)
	case c.MaxBlobBytes < 0 || c.RegistryQuota < 0 || c.JobMemoryBudget < 0:
		return fmt.Errorf("mesh: max blob bytes %d, registry quota %d and job memory budget %d: want >= 0", c.MaxBlobBytes, c.RegistryQuota, c.JobMemoryBudget)
	case c.KeyRefresh < 0 || c.KeyMaxStale < 0:
		return fmt.Errorf("mesh: negative key refresh %v or max staleness %v", c.KeyRefresh, c.KeyMaxStale)
	case c.TLS.ClientCA != "" && (c.TLS.Cert == "" || c.TLS.Key == ""):
		return fmt.Errorf("mesh: --tls-client-ca (mTLS) needs --tls-cert and --tls-key")
	case (c.TLS.Cert == "") != (c.TLS.Key == ""):
		return fmt.Errorf("mesh: --tls-cert and --tls-key go together")
	}
	if c.AdminKey != "" {
		if _, err := auth.ParseToken(c.AdminKey); err != nil {
			return fmt.Errorf("mesh: admin key: %w", err)
		}
	}
	if err := c.KeyLimits.Validate(); err != nil {
		return fmt.Errorf("mesh: default key limits: %w", err)
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("mesh: %w", err)
	}
	if c.Kernel != "" {
		if _, err := kernels.ParsePath(string(c.Kernel)); err != nil {
			return fmt.Errorf("mesh: kernel cap: %w", err)
		}
	}
	if c.HeadFormat != "" {
		if _, err := kernels.ParseHeadFormat(string(c.HeadFormat)); err != nil {
			return fmt.Errorf("mesh: %w", err)
		}
	}
	if c.I2SBlock != 0 && c.I2SBlock != ternary.I2SBlock128 && c.I2SBlock != ternary.I2SBlock64 {
		return fmt.Errorf("mesh: I2_S block %d: want 128 or 64", c.I2SBlock)
	}
	if c.KernelPlan != "" {
		if _, err := kernels.ParsePlanMode(string(c.KernelPlan)); err != nil {
			return fmt.Errorf("mesh: %w", err)
		}
	}
	if _, err := metal.ParseMode(string(c.Metal)); err != nil {
		return fmt.Errorf("mesh: %w", err)
	}
	if c.Metal == metal.ModeOff && c.Kernel == kernels.Metal {
		return fmt.Errorf("mesh: --kernel metal with --metal off")
	}
	return nil
}

// AdminKeyFile is where a registry with Auth writes the admin key it
// creates on its first start: DATA/admin.key.
func (c Config) AdminKeyFile() string { return filepath.Join(c.DataDir, "admin.key") }

// Paths inside DataDir.
func (c Config) registryDir() string { return filepath.Join(c.DataDir, "registry") }
func (c Config) cacheDir() string    { return filepath.Join(c.DataDir, "cache") }
func (c Config) workDir() string     { return filepath.Join(c.DataDir, "work") }
