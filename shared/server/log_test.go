package server

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	zapobs "go.uber.org/zap/zaptest/observer"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
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
