package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sync"

	"github.com/bitnet-mesh/bitnet-mesh/services/mesh"
)

// runUp serves the whole mesh in one process (mesh.Up) and prints a line
// with "ready" once the router sees the inference node.
func runUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bitnet up [flags]\n\nServes registry, quantizer, trainer, inference node and router in one process.")
		fs.PrintDefaults()
	}
	f, check := addMeshFlags(fs, false)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("up: unexpected arguments %q", fs.Args())
	}
	if err := check(); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	cfg, err := f.config()
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	defer cfg.Logger.Sync() //nolint:errcheck // stderr may not sync
	var mu sync.Mutex       // ready runs on Up's goroutine; stdout is shared
	err = mesh.Up(ctx, cfg, func(e mesh.Endpoints) {
		mu.Lock()
		defer mu.Unlock()
		rest := "off"
		if e.HTTP != nil {
			rest = "http://" + e.HTTP.String()
		}
		fmt.Fprintf(stdout, "bitnet mesh ready: gRPC %s, REST %s, data %s\n", e.GRPC, rest, f.data)
		if e.HTTP != nil && f.console {
			fmt.Fprintf(stdout, "console: %s/\n", rest)
		}
	})
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	return nil
}
