package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bitnet-mesh/bitnet-mesh/cmd/bitnet/internal/config"
)

// newBenchCmd is "bitnet bench kernels|model".
func newBenchCmd(env config.Lookup) *cobra.Command {
	c := &cobra.Command{
		Use:   "bench kernels|model [flags]",
		Short: "Benchmark the kernels or a model on this machine",
		Long: `Benchmark this machine: "bench kernels" measures memory read bandwidth and every
kernel path over BitNet b1.58 2B4T's matrix shapes; "bench model" measures a
model's load time, prefill and decode speed and resident memory. Print the CPU
(/proc/cpuinfo family and model) with any figure you report.`,
		Example: `  bitnet bench kernels --quick
  bitnet bench model --model /tmp/bitnet-2b.gguf --threads 1,2 --json
  bitnet help bench model`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("bench: want a target: kernels or model (see 'bitnet bench --help')")
			}
			return fmt.Errorf("bench: unknown target %q (want kernels or model)", args[0])
		},
		RunE: func(*cobra.Command, []string) error { return nil }, // Args always fails
	}
	c.AddCommand(newBenchKernelsCmd(env), newBenchModelCmd(env))
	return c
}
