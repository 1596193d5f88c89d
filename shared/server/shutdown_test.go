package server

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

func streamReq(n int, interval time.Duration) *testpb.StreamingOutputCallRequest {
	req := &testpb.StreamingOutputCallRequest{}
	for i := 0; i < n; i++ {
		req.ResponseParameters = append(req.ResponseParameters,
			&testpb.ResponseParameters{Size: 1, IntervalUs: int32(interval / time.Microsecond)})
	}
	return req
}

// An in-flight stream finishes during shutdown; health reads NOT_SERVING
// during the drain, also on a connection opened then; Serve returns nil.
func TestGracefulShutdownDrains(t *testing.T) {
	const drain = 400 * time.Millisecond
	r := startServer(t, WithDrainTimeout(drain))
	conn := dial(t, r.Addr())
	ctx := context.Background()

	st, err := testpb.NewTestServiceClient(conn).StreamingOutputCall(ctx, streamReq(4, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatalf("first message: %v", err)
	}
	stopped := make(chan time.Duration, 1)
	go func() { stopped <- r.stop(t) }()

	// During the drain: NOT_SERVING on the old connection and a new one.
	time.Sleep(drain / 4)
	for name, c := range map[string]healthpb.HealthClient{
		"existing conn": healthpb.NewHealthClient(conn),
		"new conn":      healthpb.NewHealthClient(dial(t, r.Addr())),
	} {
		hr, err := c.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("%s: got %v, %v, want NOT_SERVING during drain", name, hr.GetStatus(), err)
		}
	}

	got := 1
	for {
		if _, err := st.Recv(); err != nil {
			if status.Code(err) != codes.OK && err.Error() != "EOF" {
				t.Errorf("stream after shutdown began: got %v, want clean end", err)
			}
			break
		}
		got++
	}
	if got != 4 {
		t.Errorf("got %d stream messages, want 4", got)
	}
	select {
	case d := <-stopped:
		if d < drain {
			t.Errorf("Serve returned after %v, want at least the drain %v", d, drain)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// A stream that would run past the shutdown timeout is cut.
func TestShutdownDeadlineStopsStuckStream(t *testing.T) {
	const timeout = 300 * time.Millisecond
	r := startServer(t, WithShutdownTimeout(timeout))
	conn := dial(t, r.Addr())
	st, err := testpb.NewTestServiceClient(conn).StreamingOutputCall(context.Background(), streamReq(2, 10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); r.svc.lastID() == ""; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("stream handler did not start")
		}
	}
	d := r.stop(t)
	if d < timeout || d > timeout+5*time.Second {
		t.Errorf("Serve returned after %v, want about the shutdown timeout %v", d, timeout)
	}
	if _, err := st.Recv(); status.Code(err) == codes.OK {
		t.Errorf("stuck stream: got %v, want an error once the server stopped", err)
	}
}
