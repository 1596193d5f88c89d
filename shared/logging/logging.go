// Package logging sets up zap loggers for the mesh and carries a request's
// logger and request ID through its context.
//
// Messages are static ("grpc request", "model loaded"); everything that
// varies goes in structured fields, so logs can be searched by field.
package logging

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// RequestIDHeader is the gRPC metadata key (and, canonicalised, the HTTP
// header) that carries a request ID.
const RequestIDHeader = "x-request-id"

// maxRequestIDLen bounds IDs taken from clients so they cannot bloat logs.
const maxRequestIDLen = 128

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

type (
	loggerKey    struct{}
	requestIDKey struct{}
)

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

// WithRequestID returns ctx carrying the request ID id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request ID in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// NewRequestID returns a random 128-bit ID in hex.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// ValidRequestID reports whether a client-supplied ID may be used as is:
// 1 to 128 printable ASCII characters without spaces.
func ValidRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	return strings.IndexFunc(id, func(r rune) bool { return r <= ' ' || r > '~' }) < 0
}
