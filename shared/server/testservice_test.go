package server

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bitnet-mesh/bitnet-mesh/shared/logging"
)

// testService is grpc's interop TestService, reduced to what the tests
// use: UnaryCall echoes (payload body "panic" panics) and
// StreamingOutputCall sends one message per ResponseParameters after its
// interval, watching the stream's context.
type testService struct {
	testpb.UnimplementedTestServiceServer
	mu  sync.Mutex
	ids []string // request IDs seen, in order
}

func (s *testService) record(ctx context.Context) {
	s.mu.Lock()
	s.ids = append(s.ids, logging.RequestID(ctx))
	s.mu.Unlock()
}

func (s *testService) lastID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ids) == 0 {
		return ""
	}
	return s.ids[len(s.ids)-1]
}

func (s *testService) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	s.record(ctx)
	switch string(req.GetPayload().GetBody()) {
	case "panic":
		panic("test panic")
	case "busy": // overloaded, with a retry hint
		st, err := status.New(codes.ResourceExhausted, "busy").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(2500 * time.Millisecond)})
		if err != nil {
			return nil, err
		}
		return nil, st.Err()
	case "draining": // going away, no hint
		return nil, status.Error(codes.Unavailable, "draining")
	case "full": // overloaded, no hint
		return nil, status.Error(codes.ResourceExhausted, "full")
	}
	return &testpb.SimpleResponse{Payload: req.GetPayload(), ServerId: "srv-1"}, nil
}

func (s *testService) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	s.record(stream.Context())
	if string(req.GetPayload().GetBody()) == "panic" {
		panic("test stream panic")
	}
	for i, p := range req.GetResponseParameters() {
		if p.GetSize() < 0 {
			return status.Error(codes.Aborted, "negative size")
		}
		if d := time.Duration(p.GetIntervalUs()) * time.Microsecond; d > 0 {
			select {
			case <-time.After(d):
			case <-stream.Context().Done():
				return stream.Context().Err()
			}
		}
		body := make([]byte, p.GetSize())
		for j := range body {
			body[j] = byte('a' + i)
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: body}}); err != nil {
			return err
		}
	}
	return nil
}

// running is a Server serving on loopback, stopped at test end.
type running struct {
	*Server
	svc    *testService
	cancel context.CancelFunc
	done   chan error
}

func startServer(t *testing.T, opts ...Option) *running {
	t.Helper()
	glis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hlis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc := &testService{}
	all := append([]Option{
		WithGRPCListener(glis), WithHTTPListener(hlis),
		WithRegister(func(g *grpc.Server) { testpb.RegisterTestServiceServer(g, svc) }),
		WithShutdownTimeout(5 * time.Second),
	}, opts...)
	s, err := New(all...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Server: s, svc: svc, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Serve(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Serve and returns how long it took to return.
func (r *running) stop(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("Serve: got %v, want nil", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return within 30s of cancel")
	}
	return time.Since(start)
}

func dial(t *testing.T, addr net.Addr) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}
