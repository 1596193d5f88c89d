package main

// `bitnet serve <service>` and the settings it shares with `bitnet up`
// (config.Server; `bitnet env` lists their variables).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/bitnet-mesh/bitnet-mesh/cmd/bitnet/internal/config"
	"github.com/bitnet-mesh/bitnet-mesh/services/mesh"
	"github.com/bitnet-mesh/bitnet-mesh/shared/auth"
	"github.com/bitnet-mesh/bitnet-mesh/shared/certs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/logging"
	"github.com/bitnet-mesh/bitnet-mesh/shared/memlimit"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metal"
	"github.com/bitnet-mesh/bitnet-mesh/shared/server"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// serverSettings is config.Server with replacements (same flag name).
func serverSettings(replace ...config.Any) []config.Any {
	out := make([]config.Any, 0, len(config.Server))
	for _, s := range config.Server {
		for _, r := range replace {
			if r.Info().Flag == s.Info().Flag {
				s = r
			}
		}
		out = append(out, s)
	}
	return out
}

// meshConfig turns resolved settings into a mesh.Config with its discovery
// registry (Consul when --consul is set, else nil) and logger.
func meshConfig(v *config.Values, env config.Lookup) (mesh.Config, error) {
	log, err := logging.New(config.LogLevel.Get(v), config.LogJSON.Get(v))
	if err != nil {
		return mesh.Config{}, err
	}
	setGoMemLimit(env, log)
	cfg := mesh.Config{
		GRPCAddr:     config.GRPCAddr.Get(v),
		HTTPAddr:     config.HTTPAddr.Get(v),
		DataDir:      config.DataDir.Get(v),
		Advertise:    config.Advertise.Get(v),
		NodeName:     config.NodeName.Get(v),
		Kernel:       kernels.Path(config.Kernel.Get(v)),
		KernelPlan:   kernels.PlanMode(config.KernelPlan.Get(v)),
		Metal:        metal.Mode(config.Metal.Get(v)),
		HeadFormat:   kernels.HeadFormat(config.Head.Get(v)),
		I2SBlock:     ternary.I2SBlock(config.I2SBlock.Get(v)),
		Threads:      config.Threads.Get(v),
		KVCache:      config.KVCache.Get(v),
		NoHugePages:  !config.HugePages.Get(v),
		NoConsole:    !config.Console.Get(v),
		MemoryBudget: config.MemoryBudget.Get(v),
		MaxBatch:     config.MaxBatch.Get(v),
		MaxQueue:     config.MaxQueue.Get(v),
		PrefillChunk: config.PrefillChunk.Get(v),
		RegistryAddr: config.RegistryAddr.Get(v),
		DrainTimeout: config.Drain.Get(v),
		Logger:       log,
		Version:      version,
		Limits: server.Limits{
			MaxBodyBytes:         config.MaxBodyBytes.Get(v),
			MaxUploadBodyBytes:   config.MaxUploadBodyBytes.Get(v),
			BodyReadTimeout:      config.BodyReadTimeout.Get(v),
			MinBodyRate:          config.MinBodyRate.Get(v),
			ReadHeaderTimeout:    config.ReadHeaderTimeout.Get(v),
			IdleTimeout:          config.IdleTimeout.Get(v),
			MaxHeaderBytes:       int(config.MaxHeaderBytes.Get(v)),
			GRPCMaxRecvBytes:     int(config.GRPCMaxRecvBytes.Get(v)),
			MaxConcurrentStreams: uint32(config.MaxStreams.Get(v)),
			GRPCKeepaliveMinTime: config.GRPCKeepaliveMinTime.Get(v),
		},
		MaxBlobBytes:         config.MaxBlobBytes.Get(v),
		RegistryQuota:        config.RegistryQuota.Get(v),
		RegistryMinFreeBytes: config.RegistryMinFree.Get(v),
		JobMemoryBudget:      config.JobMemoryBudget.Get(v),
		Auth:                 config.Auth.Get(v),
		Insecure:             config.Insecure.Get(v),
		APIKey:               config.APIKey.Get(v),
		AdminKey:             config.AdminKey.Get(v),
		TLS: certs.Files{
			Cert: config.TLSCert.Get(v), Key: config.TLSKey.Get(v), CA: config.TLSCA.Get(v),
			ClientCA: config.TLSClientCA.Get(v), ServerName: config.TLSServerName.Get(v),
		},
		MetricsAddr:  config.MetricsAddr.Get(v),
		NoReflection: !config.Reflection.Get(v),
		KeyLimits: auth.Limits{
			RequestsPerSecond: config.RateLimit.Get(v), Burst: config.RateBurst.Get(v),
			TokensPerMinute: int64(config.TokensPerMinute.Get(v)), MaxStreams: config.KeyMaxStreams.Get(v),
		},
		KeyMaxStale: config.KeyMaxStale.Get(v),
	}
	if cfg.RegistryMinFreeBytes == 0 {
		cfg.RegistryMinFreeBytes = -1 // 0 on the command line: no floor
	}
	for _, o := range strings.Split(config.CORSOrigins.Get(v), ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.CORSOrigins = append(cfg.CORSOrigins, o)
		}
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "-"
	}
	if addr := config.Consul.Get(v); addr != "" {
		c, err := discovery.NewConsul(addr, discovery.WithLogger(log))
		if err != nil {
			return mesh.Config{}, err
		}
		cfg.Discovery = c
	}
	return cfg, nil
}

// setGoMemLimit sets the Go runtime's soft memory limit from the
// container's memory limit (memlimit: 90% of the cgroup limit, else of the
// host's memory) unless GOMEMLIMIT is set, so the collector works harder
// before the kernel's OOM killer steps in.
func setGoMemLimit(env config.Lookup, log *zap.Logger) {
	lim, err := memlimit.Detect()
	if err != nil {
		log.Warn("memory limit unreadable: GOMEMLIMIT not set", zap.Error(err))
		return
	}
	getenv := func(k string) string { v, _ := env(k); return v }
	if n := memlimit.SetGoLimit(lim, getenv); n > 0 {
		log.Info("Go memory limit set", zap.Int64("gomemlimit_bytes", n),
			zap.Int64("limit_bytes", lim.Bytes), zap.String("limit_source", string(lim.Source)))
	}
}

// portHint adds how to pick other ports to an "address already in use"
// error of up or serve.
func portHint(err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w (pick free ports with --grpc and --http, or BITNET_GRPC_ADDR and BITNET_HTTP_ADDR)", err)
	}
	return err
}

func serviceNames() []string {
	var names []string
	for _, k := range mesh.Kinds() {
		names = append(names, string(k))
	}
	return names
}

func newServeCmd(env config.Lookup) *cobra.Command {
	c := &cobra.Command{
		Use:   "serve registry|quantizer|trainer|inference|router [flags]",
		Short: "Serve one service of the mesh, registered in Consul",
		Long: `Serve one service: registry, quantizer, trainer, inference or router. Services
find each other through Consul (--consul, env BITNET_CONSUL_ADDR or
CONSUL_HTTP_ADDR); the quantizer and inference nodes need the registry
(discovered in Consul, or --registry ADDR).`,
		Example: `  CONSUL_HTTP_ADDR=127.0.0.1:8500 bitnet serve registry --grpc :50051 --http :8080
  bitnet serve inference --consul 127.0.0.1:8500 --kernel avx2 --threads 8 --memory-budget 8GiB
  bitnet serve router --consul 127.0.0.1:8500 --drain 5s --log-json`,
		ValidArgs: serviceNames(),
		Args:      exactArgs("service name (registry, quantizer, trainer, inference or router)"),
	}
	set := config.Bind(c, config.Server...)
	c.RunE = func(c *cobra.Command, args []string) error {
		kind, err := mesh.ParseKind(args[0])
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		v, err := set.Resolve(env)
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		return serve(c.Context(), kind, v, env, c)
	}
	return c
}

func serve(ctx context.Context, kind mesh.Kind, v *config.Values, env config.Lookup, c *cobra.Command) error {
	cfg, err := meshConfig(v, env)
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
		return fmt.Errorf("serve %s: %w", kind, portHint(err))
	}
	stdout := c.OutOrStdout()
	scheme := "http"
	if cfg.TLS.Cert != "" {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "bitnet %s serving gRPC on %s", kind, s.Addr())
	if a := s.HTTPAddr(); a != nil {
		fmt.Fprintf(stdout, ", REST on %s://%s", scheme, a)
	}
	fmt.Fprintln(stdout)
	printAccess(stdout, cfg, s.AdminKeyFile())
	if err := s.Serve(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("serve %s: %w", kind, err)
	}
	cfg.Logger.Info("stopped", zap.String("service", string(kind)))
	return nil
}

// printAccess says at start who may call the services: API keys on or off
// (and where a new admin key was written, never the key), mTLS, TLS.
func printAccess(w io.Writer, cfg mesh.Config, adminKeyFile string) {
	switch {
	case cfg.Auth:
		fmt.Fprintln(w, "API keys required (--auth): send authorization: Bearer KEY")
	case cfg.TLS.ClientCA != "":
		fmt.Fprintln(w, "API keys off; client certificates required (mTLS)")
	default:
		fmt.Fprintln(w, "API keys off: anyone who can reach these addresses may call every API (loopback only; --auth turns keys on)")
	}
	if cfg.TLS.ClientCA != "" && cfg.Auth {
		fmt.Fprintln(w, "client certificates required (mTLS)")
	}
	if adminKeyFile != "" {
		fmt.Fprintf(w, "admin key written to %s (mode 0600): bitnet keys create --api-key \"$(cat %s)\" ...\n", adminKeyFile, adminKeyFile)
	}
}
