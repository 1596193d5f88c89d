// Package requestid is the mesh's one definition of a request ID: the
// header (HTTP) and metadata key (gRPC) that carries it, how one is made,
// which client-given IDs are kept, and how it rides a context. The servers
// (shared/server), the gateway (proto/gateway), the router and the SDK all
// use it; it imports nothing beyond the standard library and grpc metadata.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"

	"google.golang.org/grpc/metadata"
)

// Header is the HTTP header that carries a request ID. gRPC metadata keys
// are case-insensitive (grpc-go lower-cases them), so Header is also the
// metadata key: metadata.Pairs(Header, id) and md.Get(Header) work as is.
const Header = "X-Request-Id"

// MaxLen bounds IDs taken from clients so they cannot bloat logs.
const MaxLen = 128

// New returns a random 128-bit ID in hex.
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// Valid reports whether a client-supplied ID may be used as is: 1 to MaxLen
// printable ASCII characters without spaces.
func Valid(id string) bool {
	if id == "" || len(id) > MaxLen {
		return false
	}
	return strings.IndexFunc(id, func(r rune) bool { return r <= ' ' || r > '~' }) < 0
}

// OrNew returns id when Valid, else a New one.
func OrNew(id string) string {
	if Valid(id) {
		return id
	}
	return New()
}

type key struct{}

// With returns ctx carrying the request ID id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// From returns the request ID in ctx, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}

// FromIncoming returns the first request ID in ctx's incoming gRPC
// metadata, or "".
func FromIncoming(ctx context.Context) string {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(Header); len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// Outgoing returns ctx with id in its outgoing gRPC metadata, unless a
// request ID is there already.
func Outgoing(ctx context.Context, id string) context.Context {
	if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get(Header)) > 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, Header, id)
}
