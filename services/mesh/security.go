package mesh

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	authv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/auth/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
	"github.com/bitnet-mesh/bitnet-mesh/shared/auth"
	"github.com/bitnet-mesh/bitnet-mesh/shared/certs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/server"
)

// security is what a Service's Config says about access control, built
// once per Service.
type security struct {
	serverTLS *tls.Config // nil: plaintext listeners
	clientTLS *tls.Config // nil: plaintext calls to other services
}

func newSecurity(cfg Config) (security, error) {
	var sec security
	var err error
	opt := certs.WithLogger(cfg.Logger.Named("tls"))
	if sec.serverTLS, err = cfg.TLS.Server(opt); err != nil {
		return sec, fmt.Errorf("mesh: TLS: %w", err)
	}
	if sec.clientTLS, err = cfg.TLS.Client(opt); err != nil {
		return sec, fmt.Errorf("mesh: TLS: %w", err)
	}
	return sec, nil
}

// mTLS reports whether client certificates are required.
func (c Config) mTLS() bool { return c.TLS.ClientCA != "" }

// checkExposure refuses to serve on a non-loopback address with neither
// API keys nor mTLS, unless Insecure says so explicitly.
func (c Config) checkExposure(addrs ...net.Addr) error {
	if c.Auth || c.mTLS() || c.Insecure {
		return nil
	}
	for _, a := range addrs {
		if a != nil && !loopback(a) {
			return fmt.Errorf("mesh: refusing to serve on %s without authentication: use --auth (API keys) or "+
				"--tls-client-ca (mTLS), or --insecure to accept any caller that can reach it", a)
		}
	}
	return nil
}

// loopback reports whether a listens on a loopback address only.
func loopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP != nil && tcp.IP.IsLoopback()
}

// registryOptions are the SDK options of this service's calls to the
// registry: its own key and TLS (with its certificate for mTLS).
func (c Config) registryOptions(sec security) []sdk.Option {
	opts := []sdk.Option{sdk.WithUserAgent("bitnet-mesh/" + c.Version)}
	if c.APIKey != "" {
		opts = append(opts, sdk.WithAPIKey(c.APIKey))
	}
	if sec.clientTLS != nil {
		opts = append(opts, sdk.WithTLS(sec.clientTLS))
	}
	// Registry calls (pulls, pushes, resolves) carry the trace context and
	// count in the grpc_client_* metrics like the router's.
	if topts, err := c.Tracing.ClientOptions(c.Metrics); err == nil {
		opts = append(opts, sdk.WithDialOptions(topts...))
	}
	return opts
}

// nodeDialOptions are the router's dial options for inference nodes.
func (sec security) nodeDialOptions() []grpc.DialOption {
	if sec.clientTLS == nil {
		return nil
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(sec.clientTLS))}
}

// remoteKeys reads the key table from the registry's KeyService with this
// service's credentials.
type remoteKeys struct{ conn *regConn }

func (r remoteKeys) SyncKeys(ctx context.Context, since uint64) (uint64, []auth.Key, bool, error) {
	c, err := r.conn.sdkClient(ctx)
	if err != nil {
		return 0, nil, false, err
	}
	resp, err := c.Keys().RPC().SyncKeys(ctx, &authv1.SyncKeysRequest{SinceRevision: since})
	if err != nil {
		return 0, nil, false, fmt.Errorf("registry key table: %w", err)
	}
	if resp.GetUnchanged() {
		return resp.GetRevision(), nil, false, nil
	}
	keys := make([]auth.Key, 0, len(resp.GetKeys()))
	for _, v := range resp.GetKeys() {
		k, err := auth.KeyFromVerifier(v)
		if err != nil {
			return 0, nil, false, fmt.Errorf("registry key table: %w", err)
		}
		keys = append(keys, k)
	}
	return resp.GetRevision(), keys, true, nil
}

// guard builds the Service's auth.Guard and the server options installing
// it. table is nil when keys are off.
func (c Config) guard(table *auth.Table, sec security) ([]server.Option, *auth.Guard, error) {
	opts := []auth.GuardOption{auth.WithDefaultLimits(c.KeyLimits), auth.WithAuditLogger(c.Logger.Named(auth.AuditLoggerName))}
	if table != nil {
		opts = append(opts, auth.WithKeys(table))
	}
	if c.mTLS() {
		opts = append(opts, auth.WithClientCertRequired())
	}
	g, err := auth.NewGuard(opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("mesh: %w", err)
	}
	sopts := []server.Option{
		server.WithUnaryInterceptor(g.UnaryServerInterceptor()),
		server.WithStreamInterceptor(g.StreamServerInterceptor()),
		server.WithHTTPMiddleware(g.Middleware),
	}
	if sec.serverTLS != nil {
		sopts = append(sopts, server.WithTLS(sec.serverTLS))
	}
	if c.MetricsAddr != "" {
		sopts = append(sopts, server.WithMetricsAddr(c.MetricsAddr))
	}
	if c.NoReflection {
		sopts = append(sopts, server.WithoutReflection())
	}
	return sopts, g, nil
}

// bootstrapAdmin creates the first admin key of a registry with Auth and
// no usable admin key (none yet, or only expired ones, e.g. after keys were
// made while auth was off): cfg.AdminKey when given, else a random one
// written to DATA/admin.key (mode 0600, created exclusively). It returns
// the file written ("" when none). The key itself is never logged.
func bootstrapAdmin(ctx context.Context, cfg Config, store *registry.Store) (string, error) {
	keys, err := store.ListKeys(ctx)
	if err != nil {
		return "", err
	}
	now := time.Now()
	for _, k := range keys {
		if k.Scopes.Has(auth.ScopeAdmin) && !k.Expired(now) {
			return "", nil
		}
	}
	name := "admin"
	for i := 2; slices.ContainsFunc(keys, func(k auth.Key) bool { return k.Name == name }); i++ {
		name = fmt.Sprintf("admin-%d", i)
	}
	spec := registry.KeySpec{Name: name, Scopes: auth.Scopes{auth.ScopeAdmin}}
	if cfg.AdminKey != "" {
		tok, err := auth.ParseToken(cfg.AdminKey)
		if err != nil {
			return "", fmt.Errorf("mesh: admin key: %w", err)
		}
		spec.Token = &tok
		k, _, err := store.CreateKey(ctx, spec)
		if err != nil {
			return "", fmt.Errorf("mesh: bootstrap admin key: %w", err)
		}
		cfg.Logger.Info("created the admin key from the configured one", zap.String("key_id", k.ID))
		return "", nil
	}
	tok, err := auth.NewToken()
	if err != nil {
		return "", err
	}
	path := cfg.AdminKeyFile()
	// Write the file first, exclusively: a key nobody can read would lock
	// the operator out; a file without a stored key is replaced next start.
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return "", fmt.Errorf("mesh: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("mesh: stale %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("mesh: admin key file: %w", err)
	}
	_, err = f.WriteString(tok.String() + "\n")
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("mesh: admin key file: %w", err)
	}
	spec.Token = &tok
	k, _, err := store.CreateKey(ctx, spec)
	if err != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("mesh: bootstrap admin key: %w", err)
	}
	cfg.Logger.Info("created the admin key", zap.String("key_id", k.ID), zap.String("file", path))
	return path, nil
}

// protect guards an HTTP route added outside the gRPC gateway (for
// example the OpenAI-compatible /v1/chat/completions with auth.Route{Scope:
// auth.ScopeGenerate, Stream: true}, /v1/models with auth.Route{Scope:
// auth.ScopeRead}): the Service's Guard authenticates, authorizes and
// rate-limits each request before h runs (see auth.Guard.Handler). Use it
// in a part's options: server.WithHTTPHandler(pattern, s.protect(route, h));
// the Guard is built after the parts, so it is looked up per request.
func (s *Service) protect(route auth.Route, h http.Handler) http.Handler {
	var once sync.Once
	var guarded http.Handler
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { guarded = s.guard.Handler(route, h) })
		guarded.ServeHTTP(w, r)
	})
}
