package server

import (
	"context"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/bitnet-mesh/bitnet-mesh/shared/logging"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metrics"
	"github.com/bitnet-mesh/bitnet-mesh/shared/requestid"
	"github.com/bitnet-mesh/bitnet-mesh/shared/telemetry"
)

// observer holds the built-in interceptors' state: request IDs, trace
// context, access logs, metrics and panic recovery.
type observer struct {
	log         *zap.Logger
	tracing     *telemetry.Tracing
	tracer      trace.Tracer
	grpc        *grpcprom.ServerMetrics
	httpHandled *prometheus.CounterVec
	httpLatency *prometheus.HistogramVec
}

// Metric names exported by every server, next to the standard
// grpc_server_* series of go-grpc-middleware's prometheus provider
// (grpc_server_started_total, grpc_server_handled_total,
// grpc_server_handling_seconds, grpc_server_msg_received_total,
// grpc_server_msg_sent_total; labels grpc_type, grpc_service, grpc_method,
// grpc_code) and the go_* and process_* collectors.
const (
	MetricGRPCHandled = "grpc_server_handled_total"
	MetricHTTPHandled = "http_server_requests_total"
	MetricHTTPLatency = "http_server_request_duration_seconds"
)

func newObserver(r *metrics.Registry, log *zap.Logger, t *telemetry.Tracing) (*observer, error) {
	o := &observer{log: log, tracing: t, tracer: t.Tracer("github.com/bitnet-mesh/bitnet-mesh/shared/server")}
	var err error
	if o.grpc, err = telemetry.ServerMetrics(r); err != nil {
		return nil, err
	}
	if o.httpHandled, err = metrics.Register(r, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricHTTPHandled, Help: "HTTP requests, by method and status code.",
	}, []string{"method", "code"})); err != nil {
		return nil, err
	}
	if o.httpLatency, err = metrics.Register(r, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: MetricHTTPLatency, Help: "HTTP request duration in seconds (streams: until the last byte), by method.",
		Buckets: telemetry.LatencyBuckets,
	}, []string{"method"})); err != nil {
		return nil, err
	}
	return o, nil
}

// quiet reports whether a request is a probe or scrape (health checks,
// /healthz, /readyz, /metrics) that is logged at debug, not info: an idle
// mesh must be silent at info.
func quiet(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.Health/") ||
		method == "/healthz" || method == "/readyz" || method == "/metrics"
}

// traceFields are the trace and span IDs of ctx's span, for log lines.
func traceFields(ctx context.Context) []zap.Field {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return nil
	}
	return []zap.Field{zap.Stringer("trace_id", sc.TraceID()), zap.Stringer("span_id", sc.SpanID())}
}

// begin puts the request ID (the client's when valid, else a new one) and a
// logger carrying it and the trace IDs on ctx.
func (o *observer) begin(ctx context.Context) (context.Context, *zap.Logger, string) {
	id := requestid.OrNew(requestid.FromIncoming(ctx))
	l := o.log.With(append([]zap.Field{zap.String("request_id", id)}, traceFields(ctx)...)...)
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("bitnet.request_id", id))
	return logging.WithRequestID(logging.WithLogger(ctx, l), id), l, id
}

func (o *observer) end(ctx context.Context, l *zap.Logger, method string, start time.Time, err error, stream bool) {
	code := status.Code(err)
	fields := []zap.Field{
		zap.String("method", method),
		zap.String("code", code.String()),
		zap.Duration("duration", time.Since(start)),
		zap.Bool("stream", stream),
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		fields = append(fields, zap.Stringer("peer", p.Addr))
	}
	level := zapcore.InfoLevel
	switch {
	case code == grpccodes.Internal, code == grpccodes.Unknown, code == grpccodes.DataLoss, code == grpccodes.Unimplemented:
		level = zapcore.ErrorLevel
	case quiet(method):
		level = zapcore.DebugLevel
	}
	if err != nil {
		fields = append(fields, zap.Error(err))
	}
	l.Log(level, "grpc request", fields...)
}

// recovered turns a panic into codes.Internal; the stack goes to the log,
// not to the client.
func recovered(l *zap.Logger, method string, p any) error {
	l.Error("grpc handler panic", zap.String("method", method), zap.Any("panic", p),
		zap.ByteString("stack", debug.Stack()))
	return status.Error(grpccodes.Internal, "internal error")
}

func (o *observer) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	ctx, l, id := o.begin(ctx)
	_ = grpc.SetHeader(ctx, metadata.Pairs(requestid.Header, id))
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, recovered(l, info.FullMethod, p)
		}
		o.end(ctx, l, info.FullMethod, start, err, false)
	}()
	return h(ctx, req)
}

func (o *observer) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	start := time.Now()
	ctx, l, id := o.begin(ss.Context())
	_ = ss.SetHeader(metadata.Pairs(requestid.Header, id))
	defer func() {
		if p := recover(); p != nil {
			err = recovered(l, info.FullMethod, p)
		}
		o.end(ctx, l, info.FullMethod, start, err, true)
	}()
	return h(srv, &ctxStream{ServerStream: ss, ctx: ctx})
}

// ctxStream overrides a stream's context with one carrying the request ID.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

// httpMiddleware gives every HTTP request an X-Request-Id (the client's when
// valid), which the gateway forwards to gRPC, continues the caller's W3C
// trace (traceparent) in a server span that the gateway's gRPC call
// carries on, and logs and counts the request.
func (o *observer) httpMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestid.OrNew(r.Header.Get(requestid.Header))
		r.Header.Set(requestid.Header, id)
		w.Header().Set(requestid.Header, id)

		ctx := o.tracing.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := o.tracer.Start(ctx, "HTTP "+r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				attribute.String("http.request.method", r.Method),
				attribute.String("url.path", r.URL.Path),
				attribute.String("bitnet.request_id", id)))
		defer span.End()
		// The gateway's in-process gRPC call takes the trace from ctx; a
		// traceparent header left on the request would be forwarded as
		// metadata too and win over it.
		r.Header.Del("Traceparent")
		r.Header.Del("Tracestate")

		l := o.log.With(append([]zap.Field{zap.String("request_id", id)}, traceFields(ctx)...)...)
		r = r.WithContext(logging.WithRequestID(logging.WithLogger(ctx, l), id))
		rw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rw, r)
		d := time.Since(start)
		o.httpHandled.WithLabelValues(r.Method, strconv.Itoa(rw.code)).Inc()
		o.httpLatency.WithLabelValues(r.Method).Observe(d.Seconds())
		span.SetAttributes(attribute.Int("http.response.status_code", rw.code))
		if rw.code >= 500 {
			span.SetStatus(codes.Error, http.StatusText(rw.code))
		}
		level := zapcore.InfoLevel
		if quiet(r.URL.Path) && rw.code < 400 {
			level = zapcore.DebugLevel
		}
		l.Log(level, "http request", zap.String("method", r.Method), zap.String("path", r.URL.Path),
			zap.Int("status", rw.code), zap.Duration("duration", d), zap.String("remote", r.RemoteAddr))
	})
}

// statusWriter records the status code; Unwrap keeps Flush (NDJSON
// streaming) working through http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
