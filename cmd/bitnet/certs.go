package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bitnet-mesh/bitnet-mesh/shared/certs"
)

func newCertsCmd() *cobra.Command {
	c := &cobra.Command{
		Use:     "certs dev --out DIR [--host NAME]...",
		Short:   "Make throwaway TLS certificates for local use and tests",
		Example: `  bitnet certs dev --out ./certs`,
		Args:    noArgs,
	}
	c.AddCommand(newCertsDevCmd())
	return c
}

func newCertsDevCmd() *cobra.Command {
	var (
		out   string
		hosts []string
	)
	c := &cobra.Command{
		Use:   "dev --out DIR [--host NAME]...",
		Short: "Make a throwaway CA, a server and a client certificate in DIR",
		Long: `Make a throwaway CA (ca.crt, ca.key), a server certificate (server.crt,
server.key; server and client auth, for localhost, 127.0.0.1, ::1 and every
--host) and a client certificate (client.crt, client.key) in DIR, valid one
year. Keys are written 0600. For development and tests only: production
certificates come from your CA (e.g. cert-manager, see docs/deploy.md).`,
		Example: `  bitnet certs dev --out ./certs --host bitnet.internal
  bitnet certs dev --out ./certs && bitnet up --auth --tls-cert certs/server.crt --tls-key certs/server.key`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			f, err := certs.WriteDev(out, hosts)
			if err != nil {
				return fmt.Errorf("certs dev: %w", err)
			}
			w := c.OutOrStdout()
			for _, l := range [][2]string{{"CA", f.CA}, {"CA key", f.CAKey}, {"server certificate", f.ServerCert},
				{"server key", f.ServerKey}, {"client certificate", f.ClientCert}, {"client key", f.ClientKey}} {
				fmt.Fprintf(w, "%-19s %s\n", l[0], l[1])
			}
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "directory to write (created 0700; an existing CA is not overwritten)")
	c.Flags().StringArrayVar(&hosts, "host", nil, "another DNS name or IP address of the server certificate (repeatable)")
	_ = c.MarkFlagRequired("out")
	return c
}
