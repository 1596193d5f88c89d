package main

import (
	"context"
	"errors"
	"io"
)

func runPerplexity(_ context.Context, _ []string, _, _ io.Writer) error {
	return errors.New("perplexity: not implemented yet")
}
