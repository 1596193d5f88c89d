package router

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/status"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metrics"
	"github.com/bitnet-mesh/bitnet-mesh/shared/telemetry"
)

// Defaults of the options.
const (
	DefaultRetries     = 2                      // other nodes tried before the first token
	DefaultFailBackoff = 2 * time.Second        // a failed node is avoided this long, doubling
	DefaultName        = "router"               // NodeInfo's name for the router
	maxMessageSize     = 64 << 20               // per message, as large as a node may send
	fanOutTimeout      = 10 * time.Second       // bound on one node's answer to an aggregate
	defaultSeed        = 0x62_69_74_6e_65_74_31 // "bitnet1": the tie-break is reproducible
)

type config struct {
	reg         discovery.Registry
	log         *zap.Logger
	retries     int
	failBackoff time.Duration
	service     string
	seed        uint64
	name        string
	version     string
	dialOpts    []grpc.DialOption
	metrics     *metrics.Registry
	tracing     *telemetry.Tracing
}

// WithTracing sets the tracing of the router's choices (a router.choose
// span with each candidate's score) and of its calls to the nodes (the
// trace context goes to them as traceparent metadata). Default
// telemetry.Off.
func WithTracing(t *telemetry.Tracing) Option { return func(c *config) { c.tracing = t } }

// Option configures a Router.
type Option func(*config)

// WithRegistry sets where the router finds inference nodes (required).
func WithRegistry(r discovery.Registry) Option { return func(c *config) { c.reg = r } }

// WithLogger sets the logger (default none).
func WithLogger(l *zap.Logger) Option { return func(c *config) { c.log = l } }

// WithRetry sets how many other nodes a request tries when its node fails
// before the first token (default DefaultRetries; 0 disables), and how long
// a failed node is then avoided (doubling with each consecutive failure;
// 0 keeps DefaultFailBackoff).
func WithRetry(retries int, backoff time.Duration) Option {
	return func(c *config) {
		c.retries = retries
		if backoff > 0 {
			c.failBackoff = backoff
		}
	}
}

// WithService sets the discovery service name of the nodes (default ServiceName).
func WithService(name string) Option { return func(c *config) { c.service = name } }

// WithSeed seeds the random tie-break between equal nodes (default fixed).
func WithSeed(seed uint64) Option { return func(c *config) { c.seed = seed } }

// WithIdentity sets the name and version NodeInfo reports for the router.
func WithIdentity(name, version string) Option {
	return func(c *config) { c.name, c.version = name, version }
}

// WithDialOptions adds options to the connections to nodes (default
// insecure credentials, 64 MiB messages).
func WithDialOptions(o ...grpc.DialOption) Option {
	return func(c *config) { c.dialOpts = append(c.dialOpts, o...) }
}

// WithMetrics exports the router's metrics (Metric* names) to reg, e.g.
// shared/server's registry (default: a private registry).
func WithMetrics(reg *metrics.Registry) Option { return func(c *config) { c.metrics = reg } }

// Router is the mesh's front door: a bitnet.inference.v1 InferenceService
// that sends each request to the inference node best suited to it (see the
// package doc). Register it on a gRPC server with Register; run it with
// Start and stop it with Close.
type Router struct {
	inferencev1.UnimplementedInferenceServiceServer

	cfg     config
	table   *table
	start   time.Time
	metrics *routerMetrics
	tracer  trace.Tracer

	// pickMu serialises picks (snapshot, choice, acquire), so that
	// concurrent requests each see the in-flight counts of those before
	// them instead of all choosing the same idle node; it guards rng.
	pickMu sync.Mutex
	rng    *rand.Rand

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	done    chan struct{} // closed when the watch goroutine ends
}

// New returns a router over the nodes in the registry given by WithRegistry.
func New(opts ...Option) (*Router, error) {
	cfg := config{retries: DefaultRetries, failBackoff: DefaultFailBackoff, service: ServiceName, seed: defaultSeed, name: DefaultName}
	for _, o := range opts {
		o(&cfg)
	}
	switch {
	case cfg.reg == nil:
		return nil, errors.New("router: no registry (use WithRegistry)")
	case cfg.retries < 0 || cfg.retries > 16:
		return nil, fmt.Errorf("router: %d retries, want 0-16", cfg.retries)
	case cfg.service == "":
		return nil, errors.New("router: empty service name")
	}
	if cfg.log == nil {
		cfg.log = zap.NewNop()
	}
	if cfg.metrics == nil {
		cfg.metrics = metrics.NewRegistry()
	}
	if cfg.tracing == nil {
		cfg.tracing = telemetry.Off()
	}
	topts, err := cfg.tracing.ClientOptions(cfg.metrics) // spans, traceparent and grpc_client_* metrics
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	dialOpts := append(append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageSize)),
	}, topts...), cfg.dialOpts...)
	dial := func(addr string) (*grpc.ClientConn, error) { return grpc.NewClient(addr, dialOpts...) }
	r := &Router{
		tracer: cfg.tracing.Tracer("github.com/bitnet-mesh/bitnet-mesh/services/router"),
		cfg:    cfg,
		table:  newTable(dial, cfg.log),
		start:  time.Now(),
		rng:    rand.New(rand.NewPCG(cfg.seed, cfg.seed^0x9e3779b97f4a7c15)),
	}
	m, err := newRouterMetrics(cfg.metrics, r.usableNodes)
	if err != nil {
		return nil, err
	}
	r.metrics = m
	return r, nil
}

// Register registers the router's InferenceService on s.
func (r *Router) Register(s grpc.ServiceRegistrar) { inferencev1.RegisterInferenceServiceServer(s, r) }

// Start watches the registry for healthy nodes from a goroutine that stops
// when ctx is done or Close is called. It returns once the first set of
// nodes (possibly empty) is known, or with ctx's error.
func (r *Router) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return errors.New("router: already started")
	}
	wctx, cancel := context.WithCancel(ctx)
	ch, err := r.cfg.reg.Watch(wctx, r.cfg.service)
	if err != nil {
		cancel()
		return fmt.Errorf("router: watch %q: %w", r.cfg.service, err)
	}
	first := make(chan struct{})
	r.started, r.cancel, r.done = true, cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		once := sync.OnceFunc(func() { close(first) })
		defer once()
		for list := range ch {
			r.table.apply(list)
			once()
		}
	}()
	select {
	case <-first:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("router: waiting for the first node list: %w", ctx.Err())
	}
}

// Close stops watching and closes the connections to the nodes. Requests
// still being forwarded fail.
func (r *Router) Close() error {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel = nil
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	r.table.closeAll()
	return nil
}

// usableNodes counts the nodes requests can go to.
func (r *Router) usableNodes() float64 {
	n := 0
	for _, s := range r.table.snapshot() {
		if s.usable {
			n++
		}
	}
	return float64(n)
}

// pick chooses a node for d among those not in tried and counts a request
// on it; the caller releases it.
func (r *Router) pick(ctx context.Context, d demand, tried map[string]bool) (_ *node, err error) {
	_, span := r.tracer.Start(ctx, "router.choose", trace.WithAttributes(
		attribute.String("bitnet.model", d.model.Text()), attribute.Int("bitnet.attempt", len(tried))))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(otelcodes.Error, status.Convert(err).Message())
		}
		span.End()
	}()
	for range 3 { // a node may leave between the snapshot and acquire
		n, done, err := r.pickOnce(d, tried, span)
		if done {
			return n, err
		}
	}
	return nil, errNoneLeft
}

// pickOnce is one attempt of pick under pickMu: done is false when the
// chosen node left the table before it could be acquired.
func (r *Router) pickOnce(d demand, tried map[string]bool, span trace.Span) (_ *node, done bool, _ error) {
	r.pickMu.Lock()
	defer r.pickMu.Unlock()
	cands, err := d.candidates(r.table.snapshot())
	if err != nil {
		return nil, true, err
	}
	left := cands[:0]
	for _, c := range cands {
		if !tried[c.id] {
			left = append(left, c)
		}
	}
	if len(left) == 0 {
		return nil, true, errNoneLeft
	}
	s, costs := d.chooseScored(left, r.rng)
	if span.IsRecording() { // with tracing off, no attribute is built per request
		attrs := make([]attribute.KeyValue, 0, len(left)+1)
		for i, c := range left {
			// One attribute per candidate, its score (cost: lower is better).
			attrs = append(attrs, attribute.Float64("bitnet.candidate."+c.id+".score", costs[i]))
		}
		span.SetAttributes(append(attrs, attribute.String("bitnet.chosen", s.id))...)
	}
	if !r.table.acquire(s.n) {
		return nil, false, nil
	}
	for _, c := range left {
		if c.n != s.n {
			c.n.passedOver(s.ewmaTTFT)
		}
	}
	return s.n, true, nil
}

// errNoneLeft means every fitting node was tried: the caller returns the
// last node's error.
var errNoneLeft = errors.New("router: every fitting node was tried")
