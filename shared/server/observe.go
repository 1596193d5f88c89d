package server

import (
	"context"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/bitnet-mesh/bitnet-mesh/shared/logging"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metrics"
)

// observer holds the built-in interceptors' state: request IDs, access
// logs, metrics and panic recovery.
type observer struct {
	log          *zap.Logger
	grpcStarted  *metrics.CounterVec
	grpcHandled  *metrics.CounterVec
	grpcLatency  *metrics.HistogramVec
	grpcInFlight *metrics.GaugeVec
	httpHandled  *metrics.CounterVec
	httpLatency  *metrics.HistogramVec
}

// Metric names exported by every server.
const (
	MetricGRPCStarted  = "bitnet_grpc_server_started_total"
	MetricGRPCHandled  = "bitnet_grpc_server_handled_total"
	MetricGRPCLatency  = "bitnet_grpc_server_handling_seconds"
	MetricGRPCInFlight = "bitnet_grpc_server_in_flight"
	MetricHTTPHandled  = "bitnet_http_server_requests_total"
	MetricHTTPLatency  = "bitnet_http_server_request_seconds"
)

func newObserver(r *metrics.Registry, log *zap.Logger) (*observer, error) {
	o := &observer{log: log}
	var err error
	if o.grpcStarted, err = r.Counter(MetricGRPCStarted, "RPCs started, by method.", "grpc_method"); err != nil {
		return nil, err
	}
	if o.grpcHandled, err = r.Counter(MetricGRPCHandled, "RPCs completed, by method and status code.", "grpc_method", "grpc_code"); err != nil {
		return nil, err
	}
	if o.grpcLatency, err = r.Histogram(MetricGRPCLatency, "RPC duration in seconds (streams: until the handler returns).", nil, "grpc_method"); err != nil {
		return nil, err
	}
	if o.grpcInFlight, err = r.Gauge(MetricGRPCInFlight, "RPCs being handled, by method.", "grpc_method"); err != nil {
		return nil, err
	}
	if o.httpHandled, err = r.Counter(MetricHTTPHandled, "HTTP requests, by method and status code.", "method", "code"); err != nil {
		return nil, err
	}
	if o.httpLatency, err = r.Histogram(MetricHTTPLatency, "HTTP request duration in seconds, by method.", nil, "method"); err != nil {
		return nil, err
	}
	return o, nil
}

// requestID takes a valid ID from the incoming metadata or makes one.
func requestID(ctx context.Context) string {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(logging.RequestIDHeader); len(v) > 0 && logging.ValidRequestID(v[0]) {
			return v[0]
		}
	}
	return logging.NewRequestID()
}

// begin puts the request ID and a logger carrying it on ctx.
func (o *observer) begin(ctx context.Context, method string) (context.Context, *zap.Logger, string) {
	id := requestID(ctx)
	l := o.log.With(zap.String("request_id", id))
	ctx = logging.WithRequestID(logging.WithLogger(ctx, l), id)
	o.grpcStarted.With(method).Inc()
	o.grpcInFlight.With(method).Inc()
	return ctx, l, id
}

func (o *observer) end(ctx context.Context, l *zap.Logger, method string, start time.Time, err error, stream bool) {
	code := status.Code(err)
	d := time.Since(start)
	o.grpcInFlight.With(method).Dec()
	o.grpcHandled.With(method, code.String()).Inc()
	o.grpcLatency.With(method).Observe(d.Seconds())
	fields := []zap.Field{
		zap.String("method", method),
		zap.String("code", code.String()),
		zap.Duration("duration", d),
		zap.Bool("stream", stream),
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		fields = append(fields, zap.Stringer("peer", p.Addr))
	}
	switch code {
	case codes.OK:
		l.Info("grpc request", fields...)
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unimplemented:
		l.Error("grpc request", append(fields, zap.Error(err))...)
	default:
		l.Info("grpc request", append(fields, zap.Error(err))...)
	}
}

// recovered turns a panic into codes.Internal; the stack goes to the log,
// not to the client.
func recovered(l *zap.Logger, method string, p any) error {
	l.Error("grpc handler panic", zap.String("method", method), zap.Any("panic", p),
		zap.ByteString("stack", debug.Stack()))
	return status.Error(codes.Internal, "internal error")
}

func (o *observer) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	ctx, l, id := o.begin(ctx, info.FullMethod)
	_ = grpc.SetHeader(ctx, metadata.Pairs(logging.RequestIDHeader, id))
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
	ctx, l, id := o.begin(ss.Context(), info.FullMethod)
	_ = ss.SetHeader(metadata.Pairs(logging.RequestIDHeader, id))
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
// valid), which the gateway forwards to gRPC, and logs and counts it.
func (o *observer) httpMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(logging.RequestIDHeader)
		if !logging.ValidRequestID(id) {
			id = logging.NewRequestID()
			r.Header.Set(logging.RequestIDHeader, id)
		}
		w.Header().Set(logging.RequestIDHeader, id)
		l := o.log.With(zap.String("request_id", id))
		r = r.WithContext(logging.WithRequestID(logging.WithLogger(r.Context(), l), id))
		rw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rw, r)
		d := time.Since(start)
		code := strconv.Itoa(rw.code)
		o.httpHandled.With(r.Method, code).Inc()
		o.httpLatency.With(r.Method).Observe(d.Seconds())
		l.Info("http request", zap.String("method", r.Method), zap.String("path", r.URL.Path),
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
