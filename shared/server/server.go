// Package server bootstraps a bitnet-mesh service: one gRPC server and one
// HTTP server (REST through grpc-gateway v2, plus plain handlers such as
// /metrics), with request IDs, access logs, panic recovery, Prometheus
// metrics, the grpc.health.v1 service, server reflection, /healthz and
// /readyz, and a graceful shutdown.
//
// The package knows nothing about the mesh's APIs: services plug in through
// WithRegister (a func(*grpc.Server)) and WithGateway (a generated
// Register...HandlerClient-style func); the gateway reaches the server's own
// gRPC server through an in-memory listener (never the network, so it
// works the same under TLS and mTLS; see inprocess.go).
//
// Security plugs in the same way: WithTLS serves both ports over TLS (the
// certs package reloads certificates from disk), and the auth package's
// Guard goes in through WithUnaryInterceptor, WithStreamInterceptor and
// WithHTTPMiddleware. REST errors carry WWW-Authenticate on 401 and
// Retry-After on 429. WithMetricsAddr moves /metrics off the main port.
//
// Shutdown, when Serve's context is done: health turns NOT_SERVING (so
// discovery stops sending traffic) and /readyz fails; after the drain time
// the gRPC server stops gracefully, letting in-flight RPCs finish until the
// shutdown timeout, after which it stops hard; the HTTP server shuts down
// alongside.
package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/bitnet-mesh/bitnet-mesh/proto/gateway"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metrics"
	"github.com/bitnet-mesh/bitnet-mesh/shared/telemetry"
)

// Default addresses, as in `bitnet up`.
const (
	DefaultGRPCAddr = "127.0.0.1:50051"
	DefaultHTTPAddr = "127.0.0.1:8080"
)

// GatewayFunc registers REST handlers on mux that forward to conn, e.g. a
// generated RegisterXxxHandler.
type GatewayFunc func(ctx context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error

// ReadyFunc reports whether the service can take traffic; a non-nil error
// fails /readyz with the error's text.
type ReadyFunc func(ctx context.Context) error

type config struct {
	grpcAddr, httpAddr string
	grpcLis, httpLis   net.Listener
	logger             *zap.Logger
	registers          []func(*grpc.Server)
	gateways           []GatewayFunc
	handlers           []handler
	connHandlers       []ConnHandlersFunc
	drain, shutdown    time.Duration
	metrics            *metrics.Registry
	ready              []ReadyFunc
	unary              []grpc.UnaryServerInterceptor
	stream             []grpc.StreamServerInterceptor
	grpcOpts           []grpc.ServerOption
	muxOpts            []runtime.ServeMuxOption
	disableReflection  bool
	onShutdown         []func(context.Context)
	httpDisabledByUser bool
	limits             Limits   // see limits.go
	uploadRoutes       []string // see WithUploadRoute
	corsOrigins        []string // see cors.go
	tls                *tls.Config
	httpMiddleware     []func(http.Handler) http.Handler
	metricsAddr        string
	metricsLis         net.Listener
	tracing            *telemetry.Tracing
}

type handler struct {
	pattern string
	h       http.Handler
}

// Option configures a Server.
type Option func(*config)

// WithGRPCAddr sets the gRPC listen address (default DefaultGRPCAddr).
func WithGRPCAddr(addr string) Option {
	return func(c *config) { c.grpcAddr = addr }
}

// WithHTTPAddr sets the HTTP listen address (default DefaultHTTPAddr); ""
// disables the HTTP server (and with it the gateway).
func WithHTTPAddr(addr string) Option {
	return func(c *config) { c.httpAddr, c.httpDisabledByUser = addr, addr == "" }
}

// WithGRPCListener serves gRPC on l instead of listening on an address.
// The server closes l.
func WithGRPCListener(l net.Listener) Option { return func(c *config) { c.grpcLis = l } }

// WithHTTPListener serves HTTP on l instead of listening on an address.
// The server closes l.
func WithHTTPListener(l net.Listener) Option { return func(c *config) { c.httpLis = l } }

// WithLogger sets the logger (default no-op).
func WithLogger(l *zap.Logger) Option { return func(c *config) { c.logger = l } }

// WithRegister adds a function that registers services on the gRPC server.
func WithRegister(fn func(*grpc.Server)) Option {
	return func(c *config) { c.registers = append(c.registers, fn) }
}

// WithGateway adds a grpc-gateway registration.
func WithGateway(fn GatewayFunc) Option {
	return func(c *config) { c.gateways = append(c.gateways, fn) }
}

// WithHTTPHandler serves h at pattern (net/http ServeMux syntax, e.g.
// "GET /openapi/"), next to the gateway, which takes every other path.
func WithHTTPHandler(pattern string, h http.Handler) Option {
	return func(c *config) { c.handlers = append(c.handlers, handler{pattern, h}) }
}

// HTTPRoute is a pattern (net/http ServeMux syntax) and its handler.
type HTTPRoute struct {
	Pattern string
	Handler http.Handler
	// Errors, when set, writes the errors the server itself answers on the
	// route's path (405 for another method, the body limits' 408, 413 and
	// 415, CORS refusals) in the API's own shape, e.g. OpenAI's; nil keeps
	// the google.rpc.Status JSON of every other route.
	Errors ErrorWriter
}

// ErrorWriter writes err (a status error) as an HTTP error with
// httpStatus; Retry-After and WWW-Authenticate are set before it is called.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, httpStatus int, err error)

// ConnHandlersFunc builds HTTP routes on conn, the gateway's gRPC
// connection to this server.
type ConnHandlersFunc func(conn grpc.ClientConnInterface) []HTTPRoute

// WithConnHandlers serves routes built on the server's own gRPC connection
// (the one the gateway uses), next to the gateway: plain HTTP fronts, such
// as the OpenAI-compatible API, whose calls then pass the same interceptors
// as every other RPC.
func WithConnHandlers(fn ConnHandlersFunc) Option {
	return func(c *config) { c.connHandlers = append(c.connHandlers, fn) }
}

// WithDrainTimeout sets how long the server reports NOT_SERVING before it
// stops taking RPCs (default 0), so that watchers see it leave first.
func WithDrainTimeout(d time.Duration) Option { return func(c *config) { c.drain = d } }

// WithShutdownTimeout bounds how long in-flight RPCs and HTTP requests may
// run after the drain before they are cut (default 10 s).
func WithShutdownTimeout(d time.Duration) Option { return func(c *config) { c.shutdown = d } }

// WithMetrics sets the metrics registry served at /metrics (default a new one).
func WithMetrics(r *metrics.Registry) Option { return func(c *config) { c.metrics = r } }

// WithTracing sets the OpenTelemetry tracing of the server (default
// telemetry.Off: no spans): a span per RPC and per HTTP request,
// continuing the caller's W3C trace (traceparent on REST, metadata on
// gRPC).
func WithTracing(t *telemetry.Tracing) Option { return func(c *config) { c.tracing = t } }

// WithReadiness adds a check to /readyz.
func WithReadiness(fn ReadyFunc) Option { return func(c *config) { c.ready = append(c.ready, fn) } }

// WithUnaryInterceptor adds interceptors that run after the built-in ones
// (request ID, access log and metrics, recovery).
func WithUnaryInterceptor(i ...grpc.UnaryServerInterceptor) Option {
	return func(c *config) { c.unary = append(c.unary, i...) }
}

// WithStreamInterceptor adds interceptors that run after the built-in ones.
func WithStreamInterceptor(i ...grpc.StreamServerInterceptor) Option {
	return func(c *config) { c.stream = append(c.stream, i...) }
}

// WithGRPCServerOption passes options to grpc.NewServer (not interceptors:
// use WithUnaryInterceptor and WithStreamInterceptor).
func WithGRPCServerOption(o ...grpc.ServerOption) Option {
	return func(c *config) { c.grpcOpts = append(c.grpcOpts, o...) }
}

// WithServeMuxOption passes options to the gateway's runtime.NewServeMux,
// after the defaults (Marshaler, header matchers).
func WithServeMuxOption(o ...runtime.ServeMuxOption) Option {
	return func(c *config) { c.muxOpts = append(c.muxOpts, o...) }
}

// WithShutdownHook adds fn, called when shutdown begins, right after health
// turns NOT_SERVING and before the drain wait (e.g. to deregister from
// discovery at once). Its context ends at the shutdown deadline; hooks run
// in order.
func WithShutdownHook(fn func(ctx context.Context)) Option {
	return func(c *config) { c.onShutdown = append(c.onShutdown, fn) }
}

// WithoutReflection turns server reflection off.
func WithoutReflection() Option { return func(c *config) { c.disableReflection = true } }

// WithTLS serves gRPC and HTTP over TLS with cfg (e.g. certs.Files.Server:
// certificates reloaded from disk, client certificates verified when
// given). The REST gateway reaches the gRPC server in process either way.
func WithTLS(cfg *tls.Config) Option { return func(c *config) { c.tls = cfg } }

// WithHTTPMiddleware wraps every HTTP route (/healthz, /readyz, /metrics,
// the gateway and WithHTTPHandler's) in mw, inside the request-ID and
// access-log middleware; middlewares run in the order given. The auth
// package's Guard.Middleware goes here.
func WithHTTPMiddleware(mw func(http.Handler) http.Handler) Option {
	return func(c *config) { c.httpMiddleware = append(c.httpMiddleware, mw) }
}

// WithMetricsAddr serves /metrics on a listener of its own (plain HTTP,
// no other route) instead of the main HTTP port, so that it can stay off a
// public port; "" keeps it on the main port.
func WithMetricsAddr(addr string) Option { return func(c *config) { c.metricsAddr = addr } }

// WithMetricsListener is WithMetricsAddr with a listener the server owns.
func WithMetricsListener(l net.Listener) Option { return func(c *config) { c.metricsLis = l } }

// Server is a gRPC + HTTP server. Create it with New, run it with Serve.
type Server struct {
	cfg     config
	log     *zap.Logger
	grpc    *grpc.Server
	health  *health.Server
	http    *http.Server
	grpcLis net.Listener
	httpLis net.Listener
	conn    *grpc.ClientConn // the gateway's connection to our own gRPC listener
	mux     *runtime.ServeMux
	ready   atomic.Bool
	serveMu sync.Mutex
	served  bool
	obs     *observer
	codec   *requestCodec

	gwLis      *gatewayListener // the gateway's in-process connection to gRPC
	httpMux    *http.ServeMux   // the plain routes, "/" the gateway
	errMux     *http.ServeMux   // paths whose errors an HTTPRoute.Errors writes
	metricsLis net.Listener     // /metrics alone (WithMetricsAddr); nil: on the main port
	metricsSrv *http.Server
}

// New builds the server and binds its listeners (so Addr and HTTPAddr are
// known before Serve). On error every listener it opened or was given is
// closed.
func New(opts ...Option) (_ *Server, err error) {
	cfg := config{grpcAddr: DefaultGRPCAddr, httpAddr: DefaultHTTPAddr, shutdown: 10 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = zap.NewNop()
	}
	if cfg.metrics == nil {
		cfg.metrics = metrics.NewRegistry()
	}
	if cfg.tracing == nil {
		cfg.tracing = telemetry.Off()
	}
	if cfg.drain < 0 || cfg.shutdown < 0 {
		return nil, fmt.Errorf("server: negative drain %v or shutdown timeout %v", cfg.drain, cfg.shutdown)
	}
	if err := cfg.limits.Validate(); err != nil {
		return nil, err
	}
	cfg.limits = cfg.limits.withDefaults()
	s := &Server{cfg: cfg, log: cfg.logger, grpcLis: cfg.grpcLis, httpLis: cfg.httpLis, metricsLis: cfg.metricsLis}
	defer func() {
		if err != nil {
			s.closeListeners()
		}
	}()

	if s.obs, err = newObserver(cfg.metrics, cfg.logger, cfg.tracing); err != nil {
		return nil, fmt.Errorf("server: metrics: %w", err)
	}
	if s.grpcLis == nil {
		if s.grpcLis, err = net.Listen("tcp", cfg.grpcAddr); err != nil {
			return nil, fmt.Errorf("server: listen gRPC on %s: %w", cfg.grpcAddr, err)
		}
	}
	if s.httpLis == nil && !cfg.httpDisabledByUser {
		if s.httpLis, err = net.Listen("tcp", cfg.httpAddr); err != nil {
			return nil, fmt.Errorf("server: listen HTTP on %s: %w", cfg.httpAddr, err)
		}
	}
	if s.metricsLis == nil && cfg.metricsAddr != "" {
		if s.metricsLis, err = net.Listen("tcp", cfg.metricsAddr); err != nil {
			return nil, fmt.Errorf("server: listen metrics on %s: %w", cfg.metricsAddr, err)
		}
	}

	s.codec = newRequestCodec()
	// Metrics see the code the recovery made of a panic; the stats handler
	// has started the RPC's span before any interceptor runs.
	unary := append([]grpc.UnaryServerInterceptor{s.obs.grpc.UnaryServerInterceptor(), s.obs.unary, s.codec.unary}, cfg.unary...)
	stream := append([]grpc.StreamServerInterceptor{s.obs.grpc.StreamServerInterceptor(), s.obs.stream, s.codec.stream}, cfg.stream...)
	creds := insecure.NewCredentials()
	if cfg.tls != nil {
		creds = credentials.NewTLS(cfg.tls)
	}
	gopts := append([]grpc.ServerOption{
		grpc.Creds(serverCreds{creds}),
		grpc.ForceServerCodecV2(s.codec),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}, cfg.limits.grpcOptions()...)
	gopts = append(gopts, cfg.tracing.ServerOptions()...)
	gopts = append(gopts, cfg.grpcOpts...)
	s.grpc = grpc.NewServer(gopts...)
	s.health = health.NewServer()
	// NOT_SERVING until Serve runs, so a registration made early is not
	// sent traffic before the server accepts it.
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	for _, r := range cfg.registers {
		r(s.grpc)
	}
	if !cfg.disableReflection {
		reflection.Register(s.grpc)
	}

	if s.httpLis != nil {
		if err := s.buildHTTP(); err != nil {
			return nil, err
		}
	}
	if s.metricsLis != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", cfg.metrics.Handler())
		s.metricsSrv = &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          zap.NewStdLog(s.log.Named("metrics")),
		}
	}
	return s, nil
}

func (s *Server) buildHTTP() error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	s.httpMux = mux
	s.errMux = http.NewServeMux()
	if s.metricsLis == nil {
		mux.Handle("GET /metrics", s.cfg.metrics.Handler())
	}
	for _, h := range s.cfg.handlers {
		mux.Handle(h.pattern, h.h)
	}

	mopts := append(gateway.MuxOptions(),
		runtime.WithErrorHandler(s.gatewayError),
		runtime.WithRoutingErrorHandler(s.routingError),
		runtime.WithMiddlewares(probeMiddleware),
		// A form POST is never taken for a GET (a cross-site page could
		// send one without a preflight).
		runtime.WithDisablePathLengthFallback(),
	)
	s.mux = runtime.NewServeMux(append(mopts, s.cfg.muxOpts...)...)
	if len(s.cfg.gateways) > 0 || len(s.cfg.connHandlers) > 0 {
		// In process, never over the network (see inprocess.go).
		s.gwLis = newGatewayListener()
		// The client span carries the HTTP request's trace to the RPC.
		topts, err := s.cfg.tracing.ClientOptions(nil)
		if err != nil {
			return fmt.Errorf("server: gateway client: %w", err)
		}
		conn, err := grpc.NewClient("passthrough:///bitnet-gateway", append(topts,
			grpc.WithContextDialer(s.gwLis.dial),
			grpc.WithTransportCredentials(insecure.NewCredentials()))...)
		if err != nil {
			return fmt.Errorf("server: gateway client: %w", err)
		}
		s.conn = conn
		for i, g := range s.cfg.gateways {
			// The context only scopes registration; handlers use each request's.
			if err := g(context.Background(), s.mux, conn); err != nil {
				_ = conn.Close()
				return fmt.Errorf("server: gateway registration %d: %w", i, err)
			}
		}
		for _, fn := range s.cfg.connHandlers {
			for _, r := range fn(conn) {
				mux.Handle(r.Pattern, r.Handler)
				if r.Errors != nil {
					s.routeErrors(r)
				}
			}
		}
	}
	mux.Handle("/", s.mux)
	var h http.Handler = mux
	for i := len(s.cfg.httpMiddleware) - 1; i >= 0; i-- {
		h = s.cfg.httpMiddleware[i](h)
	}
	s.http = &http.Server{
		// CORS answers preflights before anything asks for credentials;
		// the limits bound every body; then the access middlewares (auth).
		Handler:  s.obs.httpMiddleware(s.corsMiddleware(s.methodMiddleware(s.limitsMiddleware(s.jsonErrors(h))))),
		ErrorLog: zap.NewStdLog(s.log.Named("http")),
	}
	s.cfg.limits.httpServer(s.http)
	if s.cfg.tls != nil {
		s.http.TLSConfig = s.cfg.tls.Clone()
	}
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !s.ready.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not serving\n"))
		return
	}
	for _, fn := range s.cfg.ready {
		if err := fn(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
	}
	_, _ = w.Write([]byte("ok\n"))
}

// Addr returns the bound gRPC address.
func (s *Server) Addr() net.Addr { return s.grpcLis.Addr() }

// MetricsAddr returns the bound address of the metrics listener, or nil
// when /metrics is on the main HTTP port.
func (s *Server) MetricsAddr() net.Addr {
	if s.metricsLis == nil {
		return nil
	}
	return s.metricsLis.Addr()
}

// HTTPAddr returns the bound HTTP address, or nil without an HTTP server.
func (s *Server) HTTPAddr() net.Addr {
	if s.httpLis == nil {
		return nil
	}
	return s.httpLis.Addr()
}

// GRPC returns the underlying gRPC server (for registrations after New; do
// not call its Serve or Stop).
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Health returns the health server, so services can set per-service status.
// Serve sets "" to SERVING at start and everything to NOT_SERVING at shutdown.
func (s *Server) Health() *health.Server { return s.health }

// Metrics returns the metrics registry served at /metrics.
func (s *Server) Metrics() *metrics.Registry { return s.cfg.metrics }

// Gateway returns the gateway mux (nil without an HTTP server), e.g. for
// HandlePath routes.
func (s *Server) Gateway() *runtime.ServeMux { return s.mux }

// Close releases the listeners and the gateway's connection of a server
// that will not Serve. Once Serve has been called it does nothing: cancel
// Serve's context instead.
func (s *Server) Close() error {
	s.serveMu.Lock()
	defer s.serveMu.Unlock()
	if s.served {
		return nil
	}
	s.served = true // a later Serve fails instead of serving closed listeners
	s.closeListeners()
	if s.conn != nil {
		return s.conn.Close()
	}
	return nil
}

func (s *Server) closeListeners() {
	if s.grpcLis != nil {
		_ = s.grpcLis.Close()
	}
	if s.httpLis != nil {
		_ = s.httpLis.Close()
	}
	if s.metricsLis != nil {
		_ = s.metricsLis.Close()
	}
	if s.gwLis != nil {
		_ = s.gwLis.Close()
	}
}
