package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/bitnet-mesh/bitnet-mesh/cmd/bitnet/internal/config"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
	"github.com/bitnet-mesh/bitnet-mesh/shared/progress"
)

// newPullCmd is "bitnet pull REF --out DIR": download a version's files
// (resuming partial downloads, verifying sha256) and print their paths.
func newPullCmd(env config.Lookup) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "pull NAME[@N|:ALIAS] [--out DIR] [flags]",
		Short: "Download a model version from the registry",
		Long: `Download the files of a model version into a directory (default ./NAME),
resuming partial downloads and verifying every file's sha256, and print their
paths.`,
		Example: `  bitnet pull opticks@1 --out /tmp/opticks
  bitnet pull tiny:prod
  BITNET_REMOTE=mesh.example:50051 bitnet pull bitnet-2b --quiet`,
		Args: exactArgs("model reference NAME[@N|:ALIAS]"),
	}
	resolve := bindClient(c, env)
	c.Flags().StringVar(&out, "out", "", "destination directory (default: ./NAME)")
	c.RunE = func(c *cobra.Command, args []string) error {
		rf, err := resolve()
		if err != nil {
			return err
		}
		return pull(c.Context(), rf, args[0], out, c.OutOrStdout(), c.ErrOrStderr())
	}
	return c
}

func pull(ctx context.Context, rf client, refText, out string, stdout, stderr io.Writer) error {
	ref, err := modelv1.ParseRef(refText)
	if err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	if out == "" {
		out = ref.GetName()
	}
	ctx, c, done, err := rf.dial(ctx)
	if err != nil {
		return err
	}
	defer done()
	bar := newBar(stderr, rf.quiet)
	res, err := c.Registry().Pull(ctx, refText, out, &sdk.PullOptions{Progress: transferProgress(bar)})
	bar.Finish()
	if err != nil {
		return err
	}
	if !rf.quiet {
		fmt.Fprintf(stderr, "pulled %s: %d files, %s received, %s already there\n", res.Ref, len(res.Paths),
			progress.FormatBytes(res.BytesReceived), progress.FormatBytes(res.BytesSkipped))
	}
	for _, p := range res.Paths {
		if _, err := fmt.Fprintln(stdout, p); err != nil {
			return err
		}
	}
	return nil
}
