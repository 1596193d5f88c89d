// Command bitnet quantizes, trains, stores and serves BitNet b1.58 models.
//
// Usage: bitnet COMMAND [flags]. Run "bitnet help" for the list of commands
// and "bitnet env" for the settings every flag can also take from the
// environment (cmd/bitnet/internal/config declares them).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/bitnet-mesh/bitnet-mesh/cmd/bitnet/internal/config"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	// The first interrupt (or SIGTERM) cancels ctx: commands stop cleanly,
	// services drain. A second one exits at once.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go onSignals(sigs, cancel, os.Exit, os.Stderr) // lives as long as the process
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bitnet:", err)
		os.Exit(1)
	}
}

// onSignals cancels the command on the first signal and exits with status
// 130 on the second (a load or a drain that takes long is not waited for).
func onSignals(sigs <-chan os.Signal, cancel func(), exit func(int), stderr io.Writer) {
	if _, ok := <-sigs; !ok {
		return
	}
	cancel()
	if _, ok := <-sigs; !ok {
		return
	}
	fmt.Fprintln(stderr, "bitnet: interrupted again: exiting now")
	exit(130)
}

// run executes the command line args with the process environment.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runEnv(ctx, args, os.LookupEnv, stdout, stderr)
}

// runEnv executes the command line args, reading settings from env.
func runEnv(ctx context.Context, args []string, env config.Lookup, stdout, stderr io.Writer) error {
	root := newRootCmd(env)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}
