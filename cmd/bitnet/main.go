// Command bitnet quantizes, trains, stores and serves BitNet b1.58 models.
//
// Usage: bitnet <command> [flags]. Run "bitnet help" for the list of commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand of the bitnet binary.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists every subcommand; each lives in its own file.
func commands() map[string]command {
	return map[string]command{
		"version":    {"print the version", runVersion},
		"bench":      {"benchmark kernels or a model (bench kernels|model)", runBench},
		"tokenize":   {"tokenize text with a tokenizer.json", runTokenize},
		"generate":   {"generate text with a local model, or through the mesh with --remote", runGenerate},
		"perplexity": {"score a text with a local model", runPerplexity},
		"train":      {"train a BitNet model with QAT", runTrain},
		"push":       {"upload a GGUF file or HF directory to the registry (--quantize: as GGUF TQ2_0)", runPush},
		"pull":       {"download a model version from the registry", runPull},
		"models":     {"list the registry's models", runModels},
		"nodes":      {"list inference nodes with their hardware and load", runNodes},
		"quantize":   {"quantize a registry model to GGUF TQ2_0/TQ1_0 on the quantizer", runQuantize},
		"up":         {"serve the whole mesh in one process (registry, quantizer, trainer, inference, router)", runUp},
		"serve":      {"serve one service: registry, quantizer, trainer, inference or router", runServe},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bitnet:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout, cmds)
		return nil
	}
	c, ok := cmds[args[0]]
	if !ok {
		usage(stderr, cmds)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: bitnet <command> [flags]\n\ncommands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, cmds[n].summary)
	}
}
