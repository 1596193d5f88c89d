package main

import (
	"context"
	"errors"
	"io"
)

func runBenchModel(_ context.Context, _ []string, _, _ io.Writer) error {
	return errors.New("bench_model: not implemented yet")
}
