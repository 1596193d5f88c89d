package auth

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Guard authenticates, authorizes, rate-limits and audits every call of a
// server: gRPC through its interceptors, HTTP through Middleware (the whole
// REST port) and Handler (one route). Build it with NewGuard.
type Guard struct {
	keys        *Table // nil: keys are not required
	requireCert bool   // mTLS: every non-open call needs a verified client certificate
	certScopes  Scopes
	defaults    Limits
	policy      map[string]Rule
	audit       *zap.Logger
	now         func() time.Time
	limits      *limiter
}

// GuardOption configures a Guard.
type GuardOption func(*Guard)

// WithKeys requires an API key on every call that is not open, checked
// against t.
func WithKeys(t *Table) GuardOption { return func(g *Guard) { g.keys = t } }

// WithClientCertRequired requires a verified client certificate (mTLS) on
// every call that is not open. The TLS handshake verifies certificates
// (a certificate from another CA never gets this far); the Guard refuses
// callers that sent none, so health checks without one still work.
func WithClientCertRequired() GuardOption { return func(g *Guard) { g.requireCert = true } }

// WithCertScopes sets the scopes of a caller identified by its client
// certificate alone, when keys are required (default DefaultCertScopes).
func WithCertScopes(s Scopes) GuardOption { return func(g *Guard) { g.certScopes = s } }

// WithDefaultLimits sets the server-wide limits keys without their own
// take; zero fields mean no limit.
func WithDefaultLimits(l Limits) GuardOption { return func(g *Guard) { g.defaults = l } }

// WithAuditLogger sets the audit log (the mesh passes its logger named
// "audit"); default none.
func WithAuditLogger(l *zap.Logger) GuardOption { return func(g *Guard) { g.audit = l } }

// WithPolicy replaces Policy() (tests).
func WithPolicy(p map[string]Rule) GuardOption { return func(g *Guard) { g.policy = p } }

// WithGuardClock replaces time.Now (tests).
func WithGuardClock(now func() time.Time) GuardOption { return func(g *Guard) { g.now = now } }

// DefaultCertScopes are what a mesh service identified by its certificate
// may do: everything but admin (nodes read models, the quantizer and the
// trainer write results, the router generates).
func DefaultCertScopes() Scopes {
	return Scopes{ScopeRead, ScopeGenerate, ScopeWrite, ScopeJobs}
}

// NewGuard returns a Guard. Without WithKeys or WithClientCertRequired it
// lets every call through as anonymous but still audits mutating calls.
func NewGuard(opts ...GuardOption) (*Guard, error) {
	g := &Guard{certScopes: DefaultCertScopes(), policy: Policy(), audit: zap.NewNop(), now: time.Now, limits: newLimiter()}
	for _, o := range opts {
		o(g)
	}
	if err := g.defaults.Validate(); err != nil {
		return nil, err
	}
	return g, nil
}

// Enforcing reports whether the Guard requires credentials.
func (g *Guard) Enforcing() bool { return g.keys != nil || g.requireCert }

// KeysRequired reports whether the Guard requires API keys.
func (g *Guard) KeysRequired() bool { return g.keys != nil }

// anonymous is the caller without credentials where none are required.
func anonymous() *Principal {
	return &Principal{Kind: KindAnonymous, ID: "-", Scopes: Scopes{ScopeAdmin}}
}

// identify finds the caller of a call needing rule: a key when one was sent
// and keys are required, else a verified client certificate, else
// anonymous (only where nothing is required).
func (g *Guard) identify(ctx context.Context, key string, keySent bool, pi peerInfo) (*Principal, error) {
	if g.requireCert && !pi.inProcess && pi.cert == nil {
		return nil, status.Error(codes.Unauthenticated, "a client certificate from the mesh CA is required (mTLS)")
	}
	if g.keys == nil {
		if pi.cert != nil {
			return &Principal{Kind: KindCert, ID: certName(pi.cert), Scopes: Scopes{ScopeAdmin}}, nil
		}
		return anonymous(), nil
	}
	switch {
	case keySent:
		k, err := g.keys.Lookup(ctx, key)
		if err != nil {
			return nil, err
		}
		return &Principal{Kind: KindKey, ID: k.ID, Scopes: k.Scopes, Limits: k.Limits.Over(g.defaults)}, nil
	case pi.cert != nil:
		return &Principal{Kind: KindCert, ID: certName(pi.cert), Scopes: g.certScopes}, nil
	}
	return nil, status.Error(codes.Unauthenticated, "missing API key: send the header authorization: Bearer KEY")
}

// check authenticates and authorizes a call of method; it returns the
// caller and the method's rule.
func (g *Guard) check(ctx context.Context, method string, key string, keySent bool, pi peerInfo) (*Principal, Rule, error) {
	rule, known := g.policy[method]
	if rule.Open {
		return anonymous(), rule, nil
	}
	if !known && g.Enforcing() {
		return nil, Rule{Mutating: true}, status.Errorf(codes.PermissionDenied, "%s is not in the authorization table", method)
	}
	p, err := g.identify(ctx, key, keySent, pi)
	if err != nil {
		return nil, rule, err
	}
	if known && !p.Scopes.Has(rule.Scope) {
		return p, rule, status.Errorf(codes.PermissionDenied, "%s needs scope %q; %s %s has %s",
			method, rule.Scope, p.Kind, p.ID, p.Scopes)
	}
	return p, rule, nil
}

// admit applies the caller's limits (keys only: services and anonymous
// local callers are not limited).
func (g *Guard) admit(p *Principal, rule Rule, stream bool) (*keyLimits, func(), error) {
	if p == nil || p.Kind != KindKey {
		return nil, func() {}, nil
	}
	return g.limits.admit(p.ID, p.Limits, stream, rule.Scope == ScopeGenerate, g.now())
}

// UnaryServerInterceptor checks unary calls. Install it after shared/server's
// built-in interceptors (request IDs and access logs see its refusals).
func (g *Guard) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		key, sent := bearerFromMetadata(ctx)
		p, rule, err := g.check(ctx, info.FullMethod, key, sent, peerFromContext(ctx))
		if rule.Mutating {
			defer func() { g.auditCall(ctx, p, info.FullMethod, req, resp, err) }()
		}
		if err != nil {
			return nil, err
		}
		_, release, err := g.admit(p, rule, false)
		if err != nil {
			return nil, err
		}
		defer release()
		return h(WithPrincipal(ctx, p), req)
	}
}

// StreamServerInterceptor checks streaming calls, counts the key's open
// streams and charges the tokens of messages that carry generated token IDs
// (GetTokenIds) to its quota.
func (g *Guard) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
		ctx := ss.Context()
		key, sent := bearerFromMetadata(ctx)
		p, rule, err := g.check(ctx, info.FullMethod, key, sent, peerFromContext(ctx))
		ws := &guardedStream{ServerStream: ss, ctx: ctx, now: g.now}
		if rule.Mutating {
			defer func() { g.auditCall(ctx, p, info.FullMethod, ws.first, nil, err) }()
		}
		if err != nil {
			return err
		}
		k, release, err := g.admit(p, rule, true)
		if err != nil {
			return err
		}
		defer release()
		ws.ctx, ws.limits = WithPrincipal(ctx, p), k
		return h(srv, ws)
	}
}

// guardedStream carries the principal, remembers the first message
// received (for the audit line) and charges generated tokens.
type guardedStream struct {
	grpc.ServerStream
	ctx    context.Context
	limits *keyLimits
	first  any
	now    func() time.Time
}

func (s *guardedStream) Context() context.Context { return s.ctx }

func (s *guardedStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil && s.first == nil {
		s.first = m
	}
	return err
}

// tokenMessage is a message carrying generated token IDs
// (bitnet.inference.v1.GenerateResponse).
type tokenMessage interface{ GetTokenIds() []uint32 }

func (s *guardedStream) SendMsg(m any) error {
	if tm, ok := m.(tokenMessage); ok && s.limits != nil {
		s.limits.chargeTokens(len(tm.GetTokenIds()), s.now())
	}
	return s.ServerStream.SendMsg(m)
}

// ChargeTokens charges n generated tokens to the quota of the key on ctx
// (for HTTP handlers that generate without a gRPC stream, e.g. the
// OpenAI-compatible routes behind Handler).
func (g *Guard) ChargeTokens(ctx context.Context, n int) {
	p, ok := FromContext(ctx)
	if !ok || p.Kind != KindKey {
		return
	}
	g.limits.get(p.ID, p.Limits).chargeTokens(n, g.now())
}

// errCode is the gRPC code of err for audit lines.
func errCode(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if errors.Is(err, context.Canceled) {
		return codes.Canceled
	}
	return status.Code(err)
}
