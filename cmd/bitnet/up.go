package main

import (
	"fmt"
	"sync"

	"github.com/spf13/cobra"

	"github.com/bitnet-mesh/bitnet-mesh/cmd/bitnet/internal/config"
	"github.com/bitnet-mesh/bitnet-mesh/services/mesh"
)

// upSettings are serve's without the CONSUL_HTTP_ADDR alias: a shell set up
// for other Consul tools would otherwise make the dev mesh join that agent.
// up starts at once: its inference node measures no kernel plan unless asked
// (--kernel-plan auto).
func upSettings() []config.Any {
	return serverSettings(config.Consul.WithoutAliases(), config.KernelPlan.WithDefault("static"))
}

// newUpCmd is "bitnet up": the whole mesh in one process (mesh.Up); it
// prints a line with "ready" once the router sees the inference node.
func newUpCmd(env config.Lookup) *cobra.Command {
	c := &cobra.Command{
		Use:   "up [flags]",
		Short: "Serve the whole mesh in one process (registry, quantizer, trainer, inference, router)",
		Long: `Serve the registry, quantizer, trainer, an inference node and the router in one
process, with embedded storage and in-process discovery (or a Consul agent with
--consul / BITNET_CONSUL_ADDR). Prints a line containing "ready" once it serves.
When the default ports are taken, pick others with --grpc and --http.

On loopback it runs without API keys, for local work, and says so; --auth
turns keys on (the first start writes an admin key to DATA/admin.key, mode
0600). A non-loopback address needs --auth or --tls-client-ca (mTLS), or
--insecure to serve it open anyway. --tls-cert/--tls-key serve TLS.`,
		Example: `  bitnet up
  bitnet up --auth                            # API keys; the first start writes DATA/admin.key
  bitnet up --auth --tls-cert server.crt --tls-key server.key --grpc 0.0.0.0:50051 --http 0.0.0.0:8080
  bitnet up --grpc 127.0.0.1:50061 --http 127.0.0.1:8090 --data /tmp/bitnet
  BITNET_THREADS=2 bitnet up --log-level warn`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("up: unexpected arguments %q", args)
			}
			return nil
		},
	}
	set := config.Bind(c, upSettings()...)
	c.RunE = func(c *cobra.Command, _ []string) error {
		v, err := set.Resolve(env)
		if err != nil {
			return fmt.Errorf("up: %w", err)
		}
		cfg, err := meshConfig(v, env)
		if err != nil {
			return fmt.Errorf("up: %w", err)
		}
		defer cfg.Logger.Sync() //nolint:errcheck // stderr may not sync
		stdout, data := c.OutOrStdout(), config.DataDir.Get(v)
		var mu sync.Mutex // ready runs on Up's goroutine; stdout is shared
		err = mesh.Up(c.Context(), cfg, func(e mesh.Endpoints) {
			mu.Lock()
			defer mu.Unlock()
			rest := "off"
			if e.HTTP != nil {
				scheme := "http://"
				if cfg.TLS.Cert != "" {
					scheme = "https://"
				}
				rest = scheme + e.HTTP.String()
			}
			printAccess(stdout, cfg, e.AdminKeyFile)
			fmt.Fprintf(stdout, "bitnet mesh ready: gRPC %s, REST %s, data %s\n", e.GRPC, rest, data)
			if e.HTTP != nil && config.Console.Get(v) {
				fmt.Fprintf(stdout, "console: %s/\n", rest)
			}
		})
		if err != nil {
			return fmt.Errorf("up: %w", portHint(err))
		}
		return nil
	}
	return c
}
