package server

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/auth"
)

// BenchmarkUnary measures a loopback unary RPC through the bootstrap's
// interceptors (request ID, access log to a no-op logger, metrics,
// recovery) against a bare grpc.Server: the per-RPC cost the bootstrap adds.
func BenchmarkUnary(b *testing.B) {
	req := &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("hello")}}
	run := func(b *testing.B, addr net.Addr, opts ...grpc.DialOption) {
		conn, err := grpc.NewClient(addr.String(), append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
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
	// bootstrap+auth adds the auth Guard (an API key checked, scope
	// authorized, rate limit charged): what `--auth` costs per call.
	b.Run("bootstrap+auth", func(b *testing.B) {
		tok, err := auth.NewToken()
		if err != nil {
			b.Fatal(err)
		}
		src := auth.SourceFunc(func(context.Context, uint64) (uint64, []auth.Key, bool, error) {
			return 1, []auth.Key{{ID: tok.ID, Scopes: auth.Scopes{auth.ScopeRead}, Hash: tok.Hash(),
				Limits: auth.Limits{RequestsPerSecond: 1e9}}}, true, nil
		})
		tab, err := auth.NewTable(src)
		if err != nil {
			b.Fatal(err)
		}
		if err := tab.Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
		g, err := auth.NewGuard(auth.WithKeys(tab), auth.WithPolicy(map[string]auth.Rule{
			"/grpc.testing.TestService/UnaryCall": {Scope: auth.ScopeRead}}))
		if err != nil {
			b.Fatal(err)
		}
		s, err := New(WithGRPCAddr("127.0.0.1:0"), WithHTTPAddr(""), WithUnaryInterceptor(g.UnaryServerInterceptor()),
			WithRegister(func(g *grpc.Server) { testpb.RegisterTestServiceServer(g, &testService{}) }))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx) }()
		defer func() { cancel(); <-done }()
		run(b, s.Addr(), grpc.WithPerRPCCredentials(bearer(tok.String())))
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

// bearer sends an API key as per-RPC credentials (also in plaintext).
type bearer string

func (k bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(k)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }
