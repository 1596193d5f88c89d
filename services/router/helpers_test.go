package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/metrics"
	"github.com/bitnet-mesh/bitnet-mesh/shared/requestid"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
	"github.com/bitnet-mesh/bitnet-mesh/shared/hardware"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metal"
)

// TEST ONLY: testNode is a minimal InferenceService over real loopback gRPC
// that streams fixed tokens ("t0", "t1", ...), standing in for an inference
// node (services/inference) in the routing tests. It names itself
// "host-"+id in its messages, so tests see the router overwrite the name.
type testNode struct {
	inferencev1.UnimplementedInferenceServiceServer
	id     string
	kernel kernels.Path
	tokens int
	// hold, when set, keeps each stream open after its first token until
	// it is closed.
	hold chan struct{}
	// failBefore makes Generate fail with this code before any token.
	failBefore atomic.Uint32

	srv  *grpc.Server
	port int
	// rawMeta, when set, is registered instead of the node's NodeMeta.
	rawMeta map[string]string

	calls      atomic.Int64
	started    atomic.Int64 // streams that sent their first token
	mu         sync.Mutex
	requestIDs []string
}

// hwReport is a plausible hardware report for a node running best.
func hwReport(best kernels.Path) hardware.Report {
	r := hardware.Report{Arch: "amd64", OS: "linux", LogicalCores: 2, PhysicalCores: 2, MemoryBytes: 8 << 30, BestKernel: best}
	switch best {
	case kernels.AVX512:
		r.Kernels = []kernels.Path{kernels.Generic, kernels.AVX2, kernels.AVX512}
		r.Features = hardware.Features{AVX2: true, AVX512F: true, AVX512BW: true, AVX512VL: true, AVX512VNNI: true}
	case kernels.AVX2:
		r.Kernels = []kernels.Path{kernels.Generic, kernels.AVX2}
		r.Features = hardware.Features{AVX2: true}
	case kernels.NEON:
		r.Arch = "arm64"
		r.Kernels = []kernels.Path{kernels.Generic, kernels.NEON}
		r.Features = hardware.Features{NEON: true, DotProd: true}
	case kernels.Metal: // a Mac whose GPU passed its self-test and runs the products
		r = hwReport(kernels.NEON).WithMetal(metal.Info{Available: true, Device: "Apple M2 Pro"}, true)
		r.OS = "darwin"
		return r
	default:
		r.BestKernel = kernels.Generic
		r.Kernels = []kernels.Path{kernels.Generic}
	}
	// Nodes advertise measured speeds; these follow the paths so that
	// the fastest path is the fastest node, as on one CPU generation.
	r.Perf = hardware.Perf{DecodeTokS: map[kernels.Path]float64{kernels.Generic: 2, kernels.NEON: 12, kernels.AVX2: 16, kernels.AVX512: 25}[r.BestKernel]}
	return r
}

func (n *testNode) Generate(req *inferencev1.GenerateRequest, stream grpc.ServerStreamingServer[inferencev1.GenerateResponse]) error {
	n.calls.Add(1)
	if md, ok := metadata.FromIncomingContext(stream.Context()); ok {
		if v := md.Get(requestid.Header); len(v) > 0 {
			n.mu.Lock()
			n.requestIDs = append(n.requestIDs, v[0])
			n.mu.Unlock()
		}
	}
	if c := codes.Code(n.failBefore.Load()); c != codes.OK {
		return status.Errorf(c, "test node %s failing", n.id)
	}
	count := n.tokens
	if req.GetMaxTokens() > 0 {
		count = int(req.GetMaxTokens())
	}
	ref, _ := modelv1.ParseRef(req.GetModel())
	for i := range count {
		msg := &inferencev1.GenerateResponse{Text: fmt.Sprintf("t%d", i), TokenIds: []uint32{uint32(i)}}
		if i == 0 {
			msg.Node, msg.Kernel, msg.Model = "host-"+n.id, string(n.kernel), ref
		}
		if i == count-1 {
			msg.Node, msg.Kernel, msg.Model = "host-"+n.id, string(n.kernel), ref
			msg.FinishReason = inferencev1.FinishReason_FINISH_REASON_LENGTH
			msg.Usage = &modelv1.Usage{CompletionTokens: uint32(count)}
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
		if i == 0 {
			n.started.Add(1)
			if n.hold != nil {
				select {
				case <-n.hold:
				case <-stream.Context().Done():
					return stream.Context().Err()
				}
			}
		}
	}
	return nil
}

func (n *testNode) Tokenize(_ context.Context, req *inferencev1.TokenizeRequest) (*inferencev1.TokenizeResponse, error) {
	return &inferencev1.TokenizeResponse{TokenIds: []uint32{uint32(len(req.GetText()))}, Tokens: []string{n.id}}, nil
}

func (n *testNode) ListModels(context.Context, *inferencev1.ListModelsRequest) (*inferencev1.ListModelsResponse, error) {
	return &inferencev1.ListModelsResponse{Models: []*inferencev1.ServableModel{
		{Name: "tiny", LatestVersion: 2, Loaded: []*inferencev1.LoadedModel{{Model: &modelv1.ModelRef{Name: "tiny", Version: 2}, Node: "host-" + n.id}}},
		{Name: "big", LatestVersion: 1},
	}}, nil
}

func (n *testNode) ModelStatus(context.Context, *inferencev1.ModelStatusRequest) (*inferencev1.ModelStatusResponse, error) {
	return &inferencev1.ModelStatusResponse{
		Loaded:            []*inferencev1.LoadedModel{{Model: &modelv1.ModelRef{Name: "tiny", Version: 2}, MemoryBytes: 100}},
		MemoryBudgetBytes: 1000, MemoryUsedBytes: 100,
		Cached: []*modelv1.ModelRef{{Name: "tiny", Version: 2}},
	}, nil
}

func (n *testNode) ids() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.requestIDs...)
}

// kill stops the node's server at once: connections drop, dials are refused.
func (n *testNode) kill() { n.srv.Stop() }

type nodeOpt func(*testNode, *NodeMeta)

func withLoaded(refs ...string) nodeOpt {
	return func(_ *testNode, m *NodeMeta) {
		for _, s := range refs {
			ref, err := modelv1.ParseRef(s)
			if err != nil {
				panic(err)
			}
			m.LoadedModels = append(m.LoadedModels, ref)
		}
	}
}

func withRawMeta(m map[string]string) nodeOpt {
	return func(n *testNode, _ *NodeMeta) { n.rawMeta = m }
}

func withHold(ch chan struct{}) nodeOpt { return func(n *testNode, _ *NodeMeta) { n.hold = ch } }

// startNode serves a test node on loopback and registers it in reg with a
// health check every checkEvery (0 means 1 s: shorter checks flap on a
// loaded 2-core CI machine).
func startNode(t testing.TB, reg discovery.Registry, id string, kernel kernels.Path, checkEvery time.Duration, opts ...nodeOpt) *testNode {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{id: id, kernel: kernel, tokens: 4, srv: grpc.NewServer(), port: lis.Addr().(*net.TCPAddr).Port}
	meta := NodeMeta{Hardware: hwReport(kernel), Version: "test", StartTime: time.Now()}
	for _, o := range opts {
		o(n, &meta)
	}
	inferencev1.RegisterInferenceServiceServer(n.srv, n)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(n.srv, hs)
	go func() { _ = n.srv.Serve(lis) }() // ends with Stop below or kill
	t.Cleanup(n.srv.Stop)
	if checkEvery == 0 {
		checkEvery = time.Second
	}
	inst := discovery.Instance{ID: id, Service: ServiceName, Address: "127.0.0.1", Port: n.port, Meta: meta.Meta()}
	if n.rawMeta != nil {
		inst.Meta = n.rawMeta
	}
	if err := reg.Register(context.Background(), inst, discovery.WithCheckInterval(checkEvery),
		discovery.WithCheckTimeout(checkEvery), discovery.WithDeregisterAfter(time.Hour)); err != nil {
		t.Fatal(err)
	}
	return n
}

// startRouter runs a router over reg behind a loopback gRPC server and
// returns a client to it.
func startRouter(t testing.TB, reg discovery.Registry, opts ...Option) (*Router, inferencev1.InferenceServiceClient) {
	t.Helper()
	r, err := New(append([]Option{WithRegistry(reg), WithRetry(2, 10*time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	r.Register(srv)
	go func() { _ = srv.Serve(lis) }() // ends with Stop in the cleanup
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
		cancel()
		_ = r.Close()
	})
	return r, inferencev1.NewInferenceServiceClient(conn)
}

// waitNodes waits until the router sees exactly the healthy nodes ids.
func waitNodes(t testing.TB, r *Router, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var have []string
		for _, s := range r.table.snapshot() {
			if s.usable {
				have = append(have, s.id)
			}
		}
		if fmt.Sprint(have) == fmt.Sprint(ids) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("router sees nodes %v, want %v", have, ids)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// generate runs one Generate to the end and returns the serving node and
// kernel from the last message, and the text.
func generate(ctx context.Context, c inferencev1.InferenceServiceClient, req *inferencev1.GenerateRequest) (node, kernel, text string, err error) {
	stream, err := c.Generate(ctx, req)
	if err != nil {
		return "", "", "", err
	}
	var last *inferencev1.GenerateResponse
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", "", text, err
		}
		text += msg.GetText()
		last = msg
	}
	if last == nil {
		return "", "", "", errors.New("empty stream")
	}
	return last.GetNode(), last.GetKernel(), text, nil
}

// mustText is reg's exposition in the text format.
func mustText(t *testing.T, reg *metrics.Registry) string {
	t.Helper()
	text, err := reg.Text()
	if err != nil {
		t.Fatal(err)
	}
	return text
}
