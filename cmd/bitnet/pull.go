package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
	"github.com/bitnet-mesh/bitnet-mesh/shared/progress"
)

// runPull implements "bitnet pull REF --out DIR": download a version's
// files (resuming partial downloads, verifying sha256) and print their
// paths.
func runPull(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pull", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bitnet pull [--remote ADDR] NAME[@N|:ALIAS] [--out DIR]")
		fs.PrintDefaults()
	}
	rf := addRemoteFlags(fs)
	out := fs.String("out", "", "destination directory (default: ./NAME)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return fmt.Errorf("pull: want one model reference NAME[@N|:ALIAS], got %d arguments", len(pos))
	}
	ref, err := modelv1.ParseRef(pos[0])
	if err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	if *out == "" {
		*out = ref.GetName()
	}
	ctx, c, done, err := rf.dial(ctx)
	if err != nil {
		return err
	}
	defer done()
	bar := newBar(stderr, rf.quiet)
	res, err := c.Registry().Pull(ctx, pos[0], *out, &sdk.PullOptions{Progress: transferProgress(bar)})
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
