package main

// `bitnet keys`: API keys on the registry (or `bitnet up`), with an admin
// key (--api-key / BITNET_API_KEY).

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/bitnet-mesh/bitnet-mesh/cmd/bitnet/internal/config"
	authv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/auth/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
	"github.com/bitnet-mesh/bitnet-mesh/shared/auth"
)

func newKeysCmd(env config.Lookup) *cobra.Command {
	c := &cobra.Command{
		Use:   "keys create|list|revoke|generate",
		Short: "Create, list and revoke API keys (needs an admin key)",
		Long: `Manage the mesh's API keys on the registry (or a 'bitnet up' process) with an
admin key (--api-key, env BITNET_API_KEY). A key is shown once, when created;
the registry keeps only its SHA-256. Scopes: read (models, nodes, status,
jobs), generate (generate, tokenize), write (push, delete, aliases), jobs
(quantize, train), admin (keys, load/unload, everything). A revoked key stops
working across the mesh within seconds.`,
		Example: `  BITNET_API_KEY=$(cat ~/.local/share/bitnet/admin.key) bitnet keys list
  bitnet keys create --name ci --scopes generate,read --expires 720h
  bitnet keys list
  bitnet keys revoke ci`,
		Args: noArgs,
	}
	c.AddCommand(newKeysCreateCmd(env), newKeysListCmd(env), newKeysRevokeCmd(env), newKeysGenerateCmd())
	return c
}

func newKeysCreateCmd(env config.Lookup) *cobra.Command {
	var (
		name, scopes string
		expires      time.Duration
		lim          authv1.Limits
	)
	c := &cobra.Command{
		Use:   "create --name NAME --scopes SCOPE,... [--expires DURATION] [flags]",
		Short: "Create a key; its last line of stdout is the key itself",
		Example: `  bitnet keys create --name app --scopes generate,read
  KEY=$(bitnet keys create --name ci --scopes write --expires 720h | tail -n1)
  bitnet keys create --name batch --scopes generate --tokens-per-minute 60000 --max-streams 4`,
		Args: noArgs,
	}
	resolve := bindClient(c, env)
	c.Flags().StringVar(&name, "name", "", "unique name of the key (required)")
	c.Flags().StringVar(&scopes, "scopes", "", "comma-separated scopes: read, generate, write, jobs, admin (required)")
	c.Flags().DurationVar(&expires, "expires", 0, "lifetime, e.g. 720h; 0 = never expires")
	c.Flags().Float64Var(&lim.RequestsPerSecond, "requests-per-second", 0, "request rate limit of this key (0: the servers' default)")
	c.Flags().Uint32Var(&lim.Burst, "burst", 0, "request burst of this key (0: the servers' default)")
	c.Flags().Uint64Var(&lim.TokensPerMinute, "tokens-per-minute", 0, "generated tokens per minute (0: the servers' default)")
	c.Flags().Uint32Var(&lim.MaxStreams, "max-streams", 0, "concurrent streams (0: the servers' default)")
	_ = c.MarkFlagRequired("name")
	_ = c.MarkFlagRequired("scopes")
	c.RunE = func(c *cobra.Command, _ []string) error {
		rf, err := resolve()
		if err != nil {
			return err
		}
		sc, err := auth.ParseScopes(scopes)
		if err != nil {
			return fmt.Errorf("keys create: --scopes: %w", err)
		}
		if err := auth.ValidateKeyName(name); err != nil {
			return fmt.Errorf("keys create: --name: %w", err)
		}
		if expires < 0 {
			return fmt.Errorf("keys create: --expires %v: want >= 0", expires)
		}
		spec := sdk.KeySpec{Name: name, Scopes: sc.Strings(), TTL: expires}
		if lim.RequestsPerSecond != 0 || lim.Burst != 0 || lim.TokensPerMinute != 0 || lim.MaxStreams != 0 {
			spec.Limits = &lim
		}
		return createKey(c.Context(), rf, spec, c.OutOrStdout())
	}
	return c
}

func createKey(ctx context.Context, rf client, spec sdk.KeySpec, stdout io.Writer) error {
	ctx, c, done, err := rf.dial(ctx)
	if err != nil {
		return err
	}
	defer done()
	k, secret, err := c.Keys().Create(ctx, spec)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created key %s (id %s, scopes %s, expires %s); it is shown once:\n",
		k.GetName(), k.GetId(), strings.Join(k.GetScopes(), ","), expiry(k))
	_, err = fmt.Fprintln(stdout, secret)
	return err
}

func expiry(k *authv1.Key) string {
	if k.GetExpireTime() == nil {
		return "never"
	}
	return k.GetExpireTime().AsTime().UTC().Format(time.RFC3339)
}

func newKeysListCmd(env config.Lookup) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list [--json] [flags]",
		Short: "List the keys (names, IDs, scopes, expiry, limits; never the keys)",
		Example: `  bitnet keys list
  bitnet keys list --json --remote registry.internal:50051 --tls-ca ca.crt`,
		Args: noArgs,
	}
	resolve := bindClient(c, env)
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON (the API's ListKeysResponse) instead of a table")
	c.RunE = func(c *cobra.Command, _ []string) error {
		rf, err := resolve()
		if err != nil {
			return err
		}
		ctx, cl, done, err := rf.dial(c.Context())
		if err != nil {
			return err
		}
		defer done()
		keys, err := cl.Keys().List(ctx)
		if err != nil {
			return err
		}
		return printKeys(c.OutOrStdout(), keys, asJSON)
	}
	return c
}

func printKeys(w io.Writer, keys []*authv1.Key, asJSON bool) error {
	if asJSON {
		b, err := protojson.MarshalOptions{Multiline: true, UseProtoNames: true, EmitUnpopulated: true}.Marshal(&authv1.ListKeysResponse{Keys: keys})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tSCOPES\tCREATED\tEXPIRES\tLIMITS")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.GetName(), k.GetId(), strings.Join(k.GetScopes(), ","),
			k.GetCreateTime().AsTime().UTC().Format(time.RFC3339), expiry(k), limitsText(k.GetLimits()))
	}
	return tw.Flush()
}

func limitsText(l *authv1.Limits) string {
	var parts []string
	if l.GetRequestsPerSecond() > 0 {
		parts = append(parts, fmt.Sprintf("%g req/s", l.GetRequestsPerSecond()))
	}
	if l.GetBurst() > 0 {
		parts = append(parts, fmt.Sprintf("burst %d", l.GetBurst()))
	}
	if l.GetTokensPerMinute() > 0 {
		parts = append(parts, fmt.Sprintf("%d tok/min", l.GetTokensPerMinute()))
	}
	if l.GetMaxStreams() > 0 {
		parts = append(parts, fmt.Sprintf("%d streams", l.GetMaxStreams()))
	}
	if len(parts) == 0 {
		return "default"
	}
	return strings.Join(parts, ", ")
}

func newKeysRevokeCmd(env config.Lookup) *cobra.Command {
	c := &cobra.Command{
		Use:     "revoke NAME [flags]",
		Short:   "Revoke a key: it stops working across the mesh within seconds",
		Example: `  bitnet keys revoke ci`,
		Args:    exactArgs("key name"),
	}
	resolve := bindClient(c, env)
	c.RunE = func(c *cobra.Command, args []string) error {
		rf, err := resolve()
		if err != nil {
			return err
		}
		ctx, cl, done, err := rf.dial(c.Context())
		if err != nil {
			return err
		}
		defer done()
		k, err := cl.Keys().Revoke(ctx, args[0])
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.OutOrStdout(), "revoked key %s (id %s)\n", k.GetName(), k.GetId())
		return err
	}
	return c
}

func newKeysGenerateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "generate",
		Short: "Print a new random key without storing it (for --admin-key / BITNET_ADMIN_KEY)",
		Long: `Print a new random API key without contacting any server. A registry started
with --auth and --admin-key KEY (env BITNET_ADMIN_KEY, e.g. from a Kubernetes
Secret) stores it as its admin key on its first start.`,
		Example: `  kubectl -n bitnet create secret generic bitnet-admin-key --from-literal=key=$(bitnet keys generate)`,
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			tok, err := auth.NewToken()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(c.OutOrStdout(), tok.String())
			return err
		},
	}
}
