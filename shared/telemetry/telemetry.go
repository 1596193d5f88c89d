// Package telemetry sets up OpenTelemetry tracing for a bitnet process and
// the instrumentation every gRPC client of the mesh carries.
//
// Tracing is configured by the standard OTEL_* environment variables and is
// off when none asks for it: FromEnv returns a no-op provider unless
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set
// (and OTEL_SDK_DISABLED is not true, OTEL_TRACES_EXPORTER not "none").
// The OTLP exporter, sampler (OTEL_TRACES_SAMPLER, _ARG), batch processor
// (OTEL_BSP_*) and resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES)
// read their variables as the OpenTelemetry specification says;
// OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL picks "grpc" or "http/protobuf"
// (the default). Context travels as W3C traceparent/tracestate and baggage.
//
// Nothing here is global: the Tracing value is passed to the servers
// (shared/server.WithTracing) and to the services that make spans.
package telemetry

import (
	"context"
	"fmt"
	"strings"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"

	"github.com/bitnet-mesh/bitnet-mesh/shared/metrics"
)

// noopMeter keeps otelgrpc from making OpenTelemetry metrics: the gRPC
// metrics are the Prometheus ones (ServerMetrics, ClientMetrics).
var noopMeter = metricnoop.NewMeterProvider()

// Tracing is a tracer provider and the propagator that carries its context
// across processes.
type Tracing struct {
	Provider   trace.TracerProvider
	Propagator propagation.TextMapPropagator
	shutdown   func(context.Context) error
	on         bool // spans are recorded: the gRPC stats handlers are installed
}

// Propagator is the W3C trace context and baggage propagator the mesh uses.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Off returns tracing that records nothing. Its gRPC servers and clients
// carry no stats handler (an RPC costs what it did without tracing:
// BenchmarkUnary in shared/server makes 186 allocations per unary RPC with
// the handler off, 222 with it on), so a caller's trace does not continue
// through an untraced process; REST still reads traceparent into the
// request context.
func Off() *Tracing {
	return &Tracing{Provider: noop.NewTracerProvider(), Propagator: Propagator()}
}

// New returns tracing with provider tp (e.g. an sdktrace provider with an
// in-memory exporter in tests); Shutdown does not shut tp down.
func New(tp trace.TracerProvider) *Tracing {
	if tp == nil {
		return Off()
	}
	return &Tracing{Provider: tp, Propagator: Propagator(), on: true}
}

// Enabled reports whether the OTEL_* variables read by getenv ask for
// trace export.
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || strings.EqualFold(getenv("OTEL_TRACES_EXPORTER"), "none") {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// FromEnv returns tracing configured by the OTEL_* variables (see the
// package doc), or Off when they do not ask for it. service is the default
// service.name (OTEL_SERVICE_NAME overrides it), version its
// service.version. Call Shutdown to flush spans at exit.
func FromEnv(ctx context.Context, getenv func(string) string, service, version string) (*Tracing, error) {
	if !Enabled(getenv) {
		return Off(), nil
	}
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var client otlptrace.Client
	switch protocol {
	case "", "http/protobuf":
		client = otlptracehttp.NewClient()
	case "grpc":
		client = otlptracegrpc.NewClient()
	default:
		return nil, fmt.Errorf("telemetry: OTEL_EXPORTER_OTLP_PROTOCOL %q: want grpc or http/protobuf", protocol)
	}
	exp, err := otlptrace.New(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
	}
	res, err := resource.Merge(
		resource.NewSchemaless(semconv.ServiceName(service), semconv.ServiceVersion(version)),
		resource.Environment(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracing{Provider: tp, Propagator: Propagator(), shutdown: tp.Shutdown, on: true}, nil
}

// Shutdown flushes and stops the exporter of a FromEnv provider.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	if err := t.shutdown(ctx); err != nil {
		return fmt.Errorf("telemetry: shutdown: %w", err)
	}
	return nil
}

// Tracer returns the provider's tracer for an instrumentation scope (the
// package path, e.g. "github.com/bitnet-mesh/bitnet-mesh/services/router").
func (t *Tracing) Tracer(scope string) trace.Tracer {
	if t == nil {
		return Off().Provider.Tracer(scope)
	}
	return t.Provider.Tracer(scope)
}

// ServerOptions are the otelgrpc stats handler for a gRPC server (a span
// per RPC, continuing the caller's trace from the metadata), none when
// tracing is off.
func (t *Tracing) ServerOptions() []grpc.ServerOption {
	if t == nil || !t.on {
		return nil
	}
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(t.Provider), otelgrpc.WithPropagators(t.Propagator),
		otelgrpc.WithMeterProvider(noopMeter), otelgrpc.WithFilter(notHealth),
	))}
}

// ClientOptions are the dial options of every gRPC client in the mesh: the
// otelgrpc stats handler when tracing is on (a client span per RPC, the
// trace context sent as traceparent metadata) and, with reg, the standard
// grpc_client_* metrics.
func (t *Tracing) ClientOptions(reg *metrics.Registry) ([]grpc.DialOption, error) {
	var opts []grpc.DialOption
	if t != nil && t.on {
		opts = append(opts, grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(t.Provider), otelgrpc.WithPropagators(t.Propagator),
			otelgrpc.WithMeterProvider(noopMeter), otelgrpc.WithFilter(notHealth),
		)))
	}
	if reg != nil {
		cm, err := ClientMetrics(reg)
		if err != nil {
			return nil, err
		}
		opts = append(opts,
			grpc.WithChainUnaryInterceptor(cm.UnaryClientInterceptor()),
			grpc.WithChainStreamInterceptor(cm.StreamClientInterceptor()))
	}
	return opts, nil
}

// notHealth leaves health checks (every few seconds from each watcher)
// out of the traces.
func notHealth(info *stats.RPCTagInfo) bool {
	return !strings.HasPrefix(info.FullMethodName, "/grpc.health.v1.Health/")
}

// LatencyBuckets are the buckets of the gRPC handling-time histograms, in
// seconds: 1 ms to 5 min (a long generation is one stream).
var LatencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// ServerMetrics returns the standard grpc_server_* metrics
// (go-grpc-middleware's prometheus provider: grpc_service, grpc_method,
// grpc_type and grpc_code labels) registered on reg, or the ones already
// there.
func ServerMetrics(reg *metrics.Registry) (*grpcprom.ServerMetrics, error) {
	m, err := metrics.Register(reg, grpcprom.NewServerMetrics(
		grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(LatencyBuckets))))
	if err != nil {
		return nil, fmt.Errorf("telemetry: gRPC server metrics: %w", err)
	}
	return m, nil
}

// ClientMetrics returns the standard grpc_client_* metrics registered on
// reg, or the ones already there.
func ClientMetrics(reg *metrics.Registry) (*grpcprom.ClientMetrics, error) {
	m, err := metrics.Register(reg, grpcprom.NewClientMetrics(
		grpcprom.WithClientHandlingTimeHistogram(grpcprom.WithHistogramBuckets(LatencyBuckets))))
	if err != nil {
		return nil, fmt.Errorf("telemetry: gRPC client metrics: %w", err)
	}
	return m, nil
}

// Start starts a span named name as a child of ctx's span, with the tracer
// provider of that span (the one the server's stats handler or HTTP
// middleware started from the Tracing given to it): code that runs inside a
// request makes spans without a tracer handed down. Outside a recording
// span it returns a no-op span.
func Start(ctx context.Context, scope, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	return trace.SpanFromContext(ctx).TracerProvider().Tracer(scope).Start(ctx, name, opts...)
}
