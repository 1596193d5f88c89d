// Package logging sets up zap loggers for the mesh and carries a request's
// logger and request ID through its context.
//
// Messages are static ("grpc request", "model loaded"); everything that
// varies goes in structured fields, so logs can be searched by field.
package logging

import (
	"context"
	"fmt"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/bitnet-mesh/bitnet-mesh/shared/requestid"
)

// New returns a logger at level ("debug", "info", "warn", "error"), writing
// JSON to stderr when json is set and console text otherwise.
func New(level string, json bool) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("logging: level %q (want debug, info, warn or error): %w", level, err)
	}
	cfg := zap.NewProductionConfig()
	if !json {
		cfg = zap.NewDevelopmentConfig()
		cfg.Development = false
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil
	cfg.DisableStacktrace = lvl > zapcore.DebugLevel
	l, err := cfg.Build()
	if err != nil {
		return nil, fmt.Errorf("logging: build logger: %w", err)
	}
	return l, nil
}

type loggerKey struct{}

// WithLogger returns ctx carrying l.
func WithLogger(ctx context.Context, l *zap.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// FromContext returns the logger in ctx, or fallback (or a no-op logger when
// fallback is nil) when there is none.
func FromContext(ctx context.Context, fallback *zap.Logger) *zap.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*zap.Logger); ok && l != nil {
		return l
	}
	if fallback != nil {
		return fallback
	}
	return zap.NewNop()
}

// WithRequestID returns ctx carrying the request ID id (requestid.With).
func WithRequestID(ctx context.Context, id string) context.Context { return requestid.With(ctx, id) }

// RequestID returns the request ID in ctx, or "" (requestid.From).
func RequestID(ctx context.Context) string { return requestid.From(ctx) }
