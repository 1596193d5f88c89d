package server

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

// BenchmarkUnary measures a loopback unary RPC through the bootstrap's
// interceptors (request ID, access log to a no-op logger, metrics,
// recovery) against a bare grpc.Server: the per-RPC cost the bootstrap adds.
func BenchmarkUnary(b *testing.B) {
	req := &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("hello")}}
	run := func(b *testing.B, addr net.Addr) {
		conn, err := grpc.NewClient(addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		client := testpb.NewTestServiceClient(conn)
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := client.UnaryCall(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("bare", func(b *testing.B) {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		g := grpc.NewServer()
		testpb.RegisterTestServiceServer(g, &testService{})
		go func() { _ = g.Serve(lis) }() // ends with Stop
		defer g.Stop()
		run(b, lis.Addr())
	})
	b.Run("bootstrap", func(b *testing.B) {
		s, err := New(WithGRPCAddr("127.0.0.1:0"), WithHTTPAddr(""),
			WithRegister(func(g *grpc.Server) { testpb.RegisterTestServiceServer(g, &testService{}) }))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx) }()
		defer func() { cancel(); <-done }()
		run(b, s.Addr())
	})
}
