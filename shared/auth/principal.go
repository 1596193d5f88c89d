package auth

import (
	"context"
	"crypto/x509"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// Kind says how a caller was identified.
type Kind string

// The kinds of Principal.
const (
	// KindKey: an API key (bearer).
	KindKey Kind = "key"
	// KindCert: a client certificate verified against the mesh CA (mTLS),
	// without a key: a mesh service.
	KindCert Kind = "cert"
	// KindAnonymous: no credentials, on a server that does not require them
	// (loopback development) or on an open method.
	KindAnonymous Kind = "anonymous"
)

// Principal is the caller of one request.
type Principal struct {
	Kind Kind
	// ID names the caller in logs: the key ID, the certificate's subject
	// common name, or "-".
	ID string
	// Scopes granted.
	Scopes Scopes
	// Limits in force (per-key values over the server's defaults).
	Limits Limits
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the caller the interceptor or HTTP middleware
// identified.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok
}

// MetadataKey is the gRPC metadata key of credentials.
const MetadataKey = "authorization"

// bearer returns the key of an "authorization: Bearer KEY" value; ok is
// false when none was sent.
func bearer(values []string) (key string, ok bool) {
	for _, v := range values {
		scheme, rest, found := strings.Cut(strings.TrimSpace(v), " ")
		if found && strings.EqualFold(scheme, "bearer") {
			return strings.TrimSpace(rest), true
		}
		if strings.HasPrefix(v, TokenPrefix) { // a bare key: accept it
			return strings.TrimSpace(v), true
		}
	}
	return "", len(values) > 0
}

// bearerFromMetadata reads the incoming call's key.
func bearerFromMetadata(ctx context.Context) (string, bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	return bearer(md.Get(MetadataKey))
}

// InProcess is implemented by the transport AuthInfo of connections that
// never leave the process (shared/server's REST gateway): their calls come
// from the gateway, which has checked the HTTP client's certificate itself,
// so they need none of their own.
type InProcess interface {
	InProcess() bool
}

// peerInfo is what the transport says about the caller.
type peerInfo struct {
	inProcess bool
	cert      *x509.Certificate // verified client certificate, nil if none
}

func peerFromContext(ctx context.Context) peerInfo {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return peerInfo{}
	}
	if ip, ok := p.AuthInfo.(InProcess); ok && ip.InProcess() {
		return peerInfo{inProcess: true}
	}
	if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 && len(ti.State.VerifiedChains[0]) > 0 {
		return peerInfo{cert: ti.State.VerifiedChains[0][0]}
	}
	return peerInfo{}
}

// certName names a certificate in logs: its common name, else its first
// DNS name, else "unnamed".
func certName(c *x509.Certificate) string {
	switch {
	case c.Subject.CommonName != "":
		return c.Subject.CommonName
	case len(c.DNSNames) > 0:
		return c.DNSNames[0]
	}
	return "unnamed"
}
