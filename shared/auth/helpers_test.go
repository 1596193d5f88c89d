package auth

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/emptypb"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
)

// memSource is a key store in memory: what the registry is to a Table.
type memSource struct {
	mu   sync.Mutex
	rev  uint64
	keys map[string]Key
	err  error
	hits int
}

func newMemSource() *memSource { return &memSource{keys: map[string]Key{}} }

func (s *memSource) SyncKeys(_ context.Context, since uint64) (uint64, []Key, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hits++
	if s.err != nil {
		return 0, nil, false, s.err
	}
	if since == s.rev && since != 0 {
		return s.rev, nil, false, nil
	}
	out := make([]Key, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, k)
	}
	return s.rev, out, true, nil
}

// add creates a key with scopes and returns it as a bearer string.
func (s *memSource) add(t testing.TB, name string, scopes Scopes, lim Limits, expire time.Time) string {
	t.Helper()
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rev++
	s.keys[tok.ID] = Key{ID: tok.ID, Name: name, Scopes: scopes, Hash: tok.Hash(), CreateTime: time.Now(), ExpireTime: expire, Limits: lim}
	return tok.String()
}

func (s *memSource) revoke(t testing.TB, bearer string) {
	t.Helper()
	tok, err := ParseToken(bearer)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rev++
	delete(s.keys, tok.ID)
}

func (s *memSource) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// fakeClock is a settable time.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newSyncedTable returns a Table over src, synced once.
func newSyncedTable(t testing.TB, src Source, opts ...TableOption) *Table {
	t.Helper()
	tab, err := NewTable(src, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := tab.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	return tab
}

// handlerFor answers any method: it reads one message and, for Generate,
// sends a GenerateResponse with tokens token IDs; block, when set, holds
// streams open until closed.
type anyService struct {
	tokens int
	block  chan struct{}
}

func (a *anyService) handle(_ any, ss grpc.ServerStream) error {
	var in emptypb.Empty
	if err := ss.RecvMsg(&in); err != nil {
		return err
	}
	if a.block != nil {
		select {
		case <-a.block:
		case <-ss.Context().Done():
			return ss.Context().Err()
		}
	}
	method, _ := grpc.MethodFromServerStream(ss)
	if method == inferencev1.InferenceService_Generate_FullMethodName {
		return ss.SendMsg(&inferencev1.GenerateResponse{TokenIds: make([]uint32, a.tokens)})
	}
	return ss.SendMsg(&emptypb.Empty{})
}

// startGuarded serves g's interceptors over a handler that answers any
// method (and grpc.health.v1) on loopback, with TLS when tlsCfg is set.
func startGuarded(t testing.TB, g *Guard, svc *anyService, tlsCfg *tls.Config) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(g.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(g.StreamServerInterceptor()),
		grpc.UnknownServiceHandler(svc.handle),
	}
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	s := grpc.NewServer(opts...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	go func() { _ = s.Serve(lis) }() // ends with Stop
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func dialConn(t testing.TB, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// call invokes method as a bidirectional stream with one empty message and
// returns the status of the first answer.
func call(ctx context.Context, conn *grpc.ClientConn, method, key string) error {
	if key != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, MetadataKey, "Bearer "+key)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method)
	if err != nil {
		return err
	}
	// A server that refuses at once ends the stream: SendMsg then says
	// io.EOF and RecvMsg has the status.
	if err := st.SendMsg(&emptypb.Empty{}); err == nil {
		_ = st.CloseSend()
	}
	var out emptypb.Empty
	return st.RecvMsg(&out)
}
