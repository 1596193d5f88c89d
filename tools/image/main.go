// Command image builds the bitnet container images without a Docker daemon.
//
// It compiles one static bitnet binary per platform (CGO_ENABLED=0,
// -trimpath), packs each into a single-layer OCI image on an empty base
// (the binary at /bitnet, an empty /tmp, numeric non-root user 65532,
// org.opencontainers.image.* labels, entrypoint ["/bitnet"] and no cmd: the
// Kubernetes manifests give the arguments), gathers the images in a
// multi-arch OCI index and writes it as an OCI layout directory, an OCI
// layout tarball (--out ending in .tar) and/or pushes it to a registry.
//
//	go run ./tools/image --out dist/oci                       # layout dir, amd64+arm64
//	go run ./tools/image --out dist/bitnet.tar --version v0.1.0
//	go run ./tools/image --platforms linux/amd64 --push localhost:5000/bitnet:dev
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

// run parses the flags, builds the binaries and images, and writes them.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		out       = fs.String("out", "", "write the index here: an OCI layout directory, or an OCI layout tarball when it ends in .tar")
		push      = fs.String("push", "", "push the index to this registry reference (e.g. localhost:5000/bitnet:dev)")
		insecure  = fs.Bool("insecure", false, "allow plain HTTP for --push (local registries)")
		platforms = fs.String("platforms", "linux/amd64,linux/arm64", "comma-separated os/arch list")
		version   = fs.String("version", "dev", "version stamped into the binary (main.version) and the labels")
		revision  = fs.String("revision", "", "source revision label (default: git rev-parse HEAD when available)")
		tag       = fs.String("tag", "bitnet:dev", "reference name recorded in the OCI layout's index.json")
		module    = fs.String("module", "", "module root to build (default: the current module)")
		parallel  = fs.Int("p", 2, "go build -p: packages built in parallel")
		binaries  = fs.String("binaries", "", "reuse prebuilt binaries instead of compiling: os/arch=PATH,... (one per platform)")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *out == "" && *push == "" {
		return errors.New("nothing to do: give --out and/or --push")
	}
	plats, err := parsePlatforms(*platforms)
	if err != nil {
		return err
	}
	prebuilt, err := parseBinaries(*binaries)
	if err != nil {
		return err
	}
	cfg := Config{
		ModuleDir: *module,
		Platforms: plats,
		Version:   *version,
		Revision:  *revision,
		Parallel:  *parallel,
		Binaries:  prebuilt,
		Log:       stderr,
	}
	idx, err := Build(ctx, cfg)
	if err != nil {
		return err
	}
	if *out != "" {
		if err := WriteOut(*out, *tag, idx); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", *out)
	}
	if *push != "" {
		d, err := Push(ctx, *push, idx, *insecure)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "pushed %s@%s\n", *push, d)
	}
	return nil
}
