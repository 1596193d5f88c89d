// Package errcode maps a service's error kinds (sentinels matched with
// errors.Is) to gRPC status codes, so each handler returns the right code
// with the error's message, and services that relay another's errors (the
// quantizer and trainer relay the registry's) reuse its table.
package errcode

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Kind pairs an error kind (a sentinel tested with errors.Is) with the gRPC
// code it maps to.
type Kind struct {
	Err  error
	Code codes.Code
}

// Code maps err to a gRPC code: a status error keeps its own; else the
// first of kinds that err wraps; else Canceled or DeadlineExceeded for
// context errors; else Internal.
func Code(err error, kinds ...Kind) codes.Code {
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	for _, k := range kinds {
		if errors.Is(err, k.Err) {
			return k.Code
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	}
	return codes.Internal
}

// Status converts err to a status error with Code(err, kinds...) and err's
// message; nil stays nil and a status error is returned as it is.
func Status(err error, kinds ...Kind) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(Code(err, kinds...), err.Error())
}
