package main

import (
	"context"
	"fmt"
	"io"
)

// runBench dispatches "bitnet bench kernels|model".
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("bench: want a target: kernels or model")
	}
	switch args[0] {
	case "kernels":
		return runBenchKernels(ctx, args[1:], stdout, stderr)
	case "model":
		return runBenchModel(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("bench: unknown target %q (want kernels or model)", args[0])
}
