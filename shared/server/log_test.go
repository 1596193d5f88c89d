package server

import (
	"context"
	"testing"
	"time"

	"net/http"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	zapobs "go.uber.org/zap/zaptest/observer"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/bitnet-mesh/bitnet-mesh/shared/telemetry"
)

func TestAccessLogAndShutdownHook(t *testing.T) {
	core, logs := zapobs.New(zapcore.InfoLevel)
	var hookStatus healthpb.HealthCheckResponse_ServingStatus
	var r *running
	r = startServer(t, WithLogger(zap.New(core)), WithShutdownHook(func(ctx context.Context) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("shutdown hook: got ctx without deadline, want one")
		}
		resp, err := r.Health().Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil {
			hookStatus = resp.GetStatus()
		}
	}))
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-request-id", "log-1")
	if _, err := testpb.NewTestServiceClient(dial(t, r.Addr())).UnaryCall(ctx, &testpb.SimpleRequest{}); err != nil {
		t.Fatal(err)
	}
	entries := logs.FilterMessage("grpc request").All()
	if len(entries) != 1 {
		t.Fatalf("got %d grpc request logs, want 1", len(entries))
	}
	f := entries[0].ContextMap()
	for k, want := range map[string]any{"request_id": "log-1", "method": "/grpc.testing.TestService/UnaryCall", "code": "OK", "stream": false} {
		if f[k] != want {
			t.Errorf("log field %s: got %v, want %v", k, f[k], want)
		}
	}
	if _, ok := f["duration"].(time.Duration); !ok {
		t.Errorf("log field duration: got %T, want time.Duration", f["duration"])
	}
	r.stop(t)
	if hookStatus != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health in shutdown hook: got %v, want NOT_SERVING", hookStatus)
	}
	for _, msg := range []string{"server serving", "server draining", "server stopped"} {
		if logs.FilterMessage(msg).Len() != 1 {
			t.Errorf("got %d %q logs, want 1", logs.FilterMessage(msg).Len(), msg)
		}
	}
}

// TestProbesLogAtDebug checks that health checks, /healthz, /readyz and
// /metrics log at debug (an idle mesh is quiet at info) while a real
// request logs at info with its request ID and, when traced, its trace and
// span IDs.
func TestProbesLogAtDebug(t *testing.T) {
	core, logs := zapobs.New(zapcore.DebugLevel)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	r := startServer(t, WithLogger(zap.New(core)), WithTracing(telemetry.New(tp)))
	conn := dial(t, r.Addr())
	if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	base := "http://" + r.HTTPAddr().String()
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp, _ := httpGet(t, base+p, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: got %d, want 200", p, resp.StatusCode)
		}
	}
	if _, err := testpb.NewTestServiceClient(conn).UnaryCall(context.Background(), &testpb.SimpleRequest{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		msg, method string
		level       zapcore.Level
	}{
		{"grpc request", "/grpc.health.v1.Health/Check", zapcore.DebugLevel},
		{"http request", "/healthz", zapcore.DebugLevel},
		{"http request", "/readyz", zapcore.DebugLevel},
		{"http request", "/metrics", zapcore.DebugLevel},
		{"grpc request", "/grpc.testing.TestService/UnaryCall", zapcore.InfoLevel},
	}
	for _, tt := range tests {
		var found bool
		for _, e := range logs.FilterMessage(tt.msg).All() {
			f := e.ContextMap()
			if f["method"] != tt.method && f["path"] != tt.method {
				continue
			}
			found = true
			if e.Level != tt.level {
				t.Errorf("%s %s: got level %v, want %v", tt.msg, tt.method, e.Level, tt.level)
			}
			if id, _ := f["request_id"].(string); id == "" {
				t.Errorf("%s %s: got no request_id", tt.msg, tt.method)
			}
			if tt.msg == "http request" || tt.method == "/grpc.testing.TestService/UnaryCall" {
				if tid, _ := f["trace_id"].(string); len(tid) != 32 {
					t.Errorf("%s %s: got trace_id %q, want 32 hex digits", tt.msg, tt.method, tid)
				}
			}
		}
		if !found {
			t.Errorf("got no %q log for %s", tt.msg, tt.method)
		}
	}
}
