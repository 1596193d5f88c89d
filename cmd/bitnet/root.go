package main

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bitnet-mesh/bitnet-mesh/cmd/bitnet/internal/config"
)

// newRootCmd builds the bitnet command tree; settings are read from env.
func newRootCmd(env config.Lookup) *cobra.Command {
	root := &cobra.Command{
		Use:   "bitnet COMMAND [flags]",
		Short: "Quantize, train, store and serve BitNet b1.58 models on CPUs",
		Long: `bitnet quantizes, trains, stores and serves BitNet b1.58 language models
(ternary weights, 8-bit activations) on ordinary CPUs, as a mesh of gRPC services.

Every setting flag (addresses, kernel, threads, logging, ...) can also come
from a BITNET_* environment variable; the flag wins. "bitnet env" lists them.`,
		Example: `  bitnet up                                   # the whole mesh in one process
  bitnet push ./my-model --name mine --quantize
  bitnet generate --model mine --prompt "Light is"
  bitnet help generate`,
		Version:       versionString(),
		SilenceErrors: true, // main prints the error once
		SilenceUsage:  true,
	}
	root.SetVersionTemplate("bitnet {{.Version}}\n")
	root.SetFlagErrorFunc(flagError)
	root.AddGroup(
		&cobra.Group{ID: "mesh", Title: "Serving:"},
		&cobra.Group{ID: "client", Title: "Mesh clients (--remote, env BITNET_REMOTE):"},
		&cobra.Group{ID: "local", Title: "Local models:"},
	)
	for _, c := range []*cobra.Command{newUpCmd(env), newServeCmd(env)} {
		c.GroupID = "mesh"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{newPushCmd(env), newPullCmd(env), newModelsCmd(env), newNodesCmd(env), newQuantizeCmd(env), newKeysCmd(env)} {
		c.GroupID = "client"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{newGenerateCmd(env), newPerplexityCmd(env), newTokenizeCmd(), newTrainCmd(env), newBenchCmd(env)} {
		c.GroupID = "local"
		root.AddCommand(c)
	}
	certsCmd := newCertsCmd()
	certsCmd.GroupID = "mesh"
	root.AddCommand(certsCmd, newEnvCmd(env), newVersionCmd())
	return root
}

// longFlagOneDash matches a Go-flag style "-name" that pflag reads as
// shorthands.
var longFlagOneDash = regexp.MustCompile(`^unknown shorthand flag: '.' in -([a-z][a-z0-9-]+)`)

// flagError adds the command's help pointer to a flag error, and names the
// two-dash spelling of a long flag given with one dash (Go's flag package
// accepted -model; this command line wants --model).
func flagError(c *cobra.Command, err error) error {
	if m := longFlagOneDash.FindStringSubmatch(err.Error()); m != nil && c.Flags().Lookup(m[1]) != nil {
		return fmt.Errorf("%s: unknown flag -%s: long flags take two dashes: --%s", commandName(c), m[1], m[1])
	}
	return fmt.Errorf("%s: %w (see '%s --help')", commandName(c), err, c.CommandPath())
}

// exactArgs is cobra.ExactArgs with a message naming what is wanted.
func exactArgs(what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("%s: want one %s, got %d arguments", c.Name(), what, len(args))
		}
		return nil
	}
}

// noArgs is cobra.NoArgs with the message the commands always gave.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s: unexpected argument %q", commandName(c), args[0])
	}
	return nil
}

// fixedCompletion completes a flag with fixed values.
func fixedCompletion(values ...string) cobra.CompletionFunc {
	return cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)
}

// commandName is the command's path without the binary's name ("bench
// model"), the prefix of its error messages.
func commandName(c *cobra.Command) string {
	return strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ")
}
