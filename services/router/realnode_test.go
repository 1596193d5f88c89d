package router_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/services/inference"
	"github.com/bitnet-mesh/bitnet-mesh/services/router"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

// realModel is a tiny BitNet checkpoint the inference nodes serve from
// the repository's test models.
const (
	realModels = "../../testdata/models"
	realModel  = "tiny-gqa-packed"
)

// realNode serves services/inference on loopback, capped at kernel k, and
// registers it with the Meta an inference node publishes.
func realNode(t testing.TB, reg discovery.Registry, k kernels.Path) string {
	t.Helper()
	id := "real-" + string(k)
	s, err := inference.NewServer(inference.DirFetcher{Root: realModels}, inference.WithNodeName(id),
		inference.WithKernelCap(k), inference.WithVersion("test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	s.Register(g)
	healthpb.RegisterHealthServer(g, health.NewServer())
	go func() { _ = g.Serve(lis) }() // ends with Stop in the cleanup
	t.Cleanup(g.Stop)
	meta := router.NodeMeta{Hardware: s.Hardware(), Version: "test", StartTime: time.Now()}
	inst := discovery.Instance{ID: id, Service: router.ServiceName, Address: "127.0.0.1", Port: lis.Addr().(*net.TCPAddr).Port, Meta: meta.Meta()}
	if err := reg.Register(context.Background(), inst, discovery.WithCheckInterval(time.Second)); err != nil {
		t.Fatal(err)
	}
	return inst.HostPort()
}

func dial(t testing.TB, addr string) inferencev1.InferenceServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return inferencev1.NewInferenceServiceClient(conn)
}

// realMesh starts one real inference node per kernel path this CPU runs
// and a router over them; it returns the router's client and each node's
// address by path.
func realMesh(t testing.TB) (inferencev1.InferenceServiceClient, map[kernels.Path]string) {
	t.Helper()
	reg := discovery.NewMemory()
	t.Cleanup(func() { _ = reg.Close() })
	addrs := map[kernels.Path]string{}
	for _, k := range kernels.Supported() {
		addrs[k] = realNode(t, reg, k)
	}
	r, err := router.New(router.WithRegistry(reg))
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
	g := grpc.NewServer()
	r.Register(g)
	go func() { _ = g.Serve(lis) }() // ends with Stop in the cleanup
	t.Cleanup(func() { g.Stop(); cancel(); _ = r.Close() })
	c := dial(t, lis.Addr().String())
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.ListNodes(ctx, &inferencev1.ListNodesRequest{})
		if err == nil && len(resp.GetNodes()) == len(addrs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("router sees %v (err %v), want %d nodes", resp.GetNodes(), err, len(addrs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c, addrs
}

type result struct {
	text, node, kernel string
	completion         uint32
}

func run(ctx context.Context, c inferencev1.InferenceServiceClient, req *inferencev1.GenerateRequest) (result, error) {
	stream, err := c.Generate(ctx, req)
	if err != nil {
		return result{}, err
	}
	var res result
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return res, nil
		}
		if err != nil {
			return res, err
		}
		res.text += msg.GetText()
		if msg.GetFinishReason() != inferencev1.FinishReason_FINISH_REASON_UNSPECIFIED {
			res.node, res.kernel, res.completion = msg.GetNode(), msg.GetKernel(), msg.GetUsage().GetCompletionTokens()
		}
	}
}

// TestRealNodes routes to services/inference nodes running a real model:
// each kernel path required lands on its node, and the text is what the
// node gives when asked directly (greedy decoding).
func TestRealNodes(t *testing.T) {
	c, addrs := realMesh(t)
	zero := float32(0)
	for _, k := range kernels.Supported() {
		t.Run(string(k), func(t *testing.T) {
			req := &inferencev1.GenerateRequest{Model: realModel, Prompt: "Light is", MaxTokens: 8, Temperature: &zero,
				Require: []string{string(k)}, PreferKernel: string(k)}
			got, err := run(t.Context(), c, req)
			if err != nil {
				t.Fatal(err)
			}
			if got.node != "real-"+string(k) || got.kernel != string(k) || got.completion == 0 {
				t.Errorf("got node %q kernel %q %d tokens, want real-%s %s and some tokens", got.node, got.kernel, got.completion, k, k)
			}
			direct, err := run(t.Context(), dial(t, addrs[k]), req)
			if err != nil {
				t.Fatal(err)
			}
			if direct.text != got.text {
				t.Errorf("got %q through the router, want %q as from the node", got.text, direct.text)
			}
		})
	}
}

// BenchmarkRealTTFT is BenchmarkGenerateTTFT with a real inference node
// (tiny model, 8-token prompt, 4 tokens): p50 time to first token directly
// and through the router.
//
//	go test -run X -bench RealTTFT -benchtime 500x ./services/router/
func BenchmarkRealTTFT(b *testing.B) {
	reg := discovery.NewMemory()
	b.Cleanup(func() { _ = reg.Close() })
	addr := realNode(b, reg, kernels.Best())
	r, err := router.New(router.WithRegistry(reg))
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Close() })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	g := grpc.NewServer()
	r.Register(g)
	go func() { _ = g.Serve(lis) }() // ends with Stop in the cleanup
	b.Cleanup(g.Stop)
	zero := float32(0)
	req := &inferencev1.GenerateRequest{Model: realModel, Prompt: "Light is made of", MaxTokens: 4, Temperature: &zero}
	clients := []struct {
		name string
		c    inferencev1.InferenceServiceClient
	}{{"direct", dial(b, addr)}, {"router", dial(b, lis.Addr().String())}}
	for _, cl := range clients { // warm up: load the model, wait for the router to see the node
		for i := 0; ; i++ {
			if _, err := run(b.Context(), cl.c, req); err == nil {
				break
			} else if i > 100 {
				b.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, cl := range clients {
		b.Run(cl.name, func(b *testing.B) {
			ttfts := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				stream, err := cl.c.Generate(b.Context(), req)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := stream.Recv(); err != nil {
					b.Fatal(err)
				}
				ttfts = append(ttfts, time.Since(start))
				for {
					if _, err := stream.Recv(); errors.Is(err, io.EOF) {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
			}
			slices.Sort(ttfts)
			b.ReportMetric(float64(ttfts[len(ttfts)/2].Microseconds()), "p50-ttft-µs")
			b.ReportMetric(float64(ttfts[len(ttfts)*99/100].Microseconds()), "p99-ttft-µs")
		})
	}
}

// TestRealEmbed routes Embed to real nodes serving the synthetic Qwen3
// embedding model: the router's answer is the node's, the response names
// the node, and a causal LM is refused with FAILED_PRECONDITION.
func TestRealEmbed(t *testing.T) {
	const embedModel = "tiny-qwen3-embed"
	if _, err := os.Stat(filepath.Join(realModels, embedModel, "model.safetensors")); err != nil {
		t.Skip("no synthetic embedding model:", err)
	}
	c, addrs := realMesh(t)
	for _, k := range kernels.Supported() {
		t.Run(string(k), func(t *testing.T) {
			req := &inferencev1.EmbedRequest{Model: embedModel, Inputs: []string{"Light is", "The rays of the Sun"},
				Require: []string{string(k)}, PreferKernel: string(k), Dimensions: 32}
			got, err := c.Embed(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			if got.GetNode() != "real-"+string(k) || len(got.GetEmbeddings()) != 2 || got.GetDimensions() != 32 {
				t.Fatalf("got node %q, %d embeddings of %d dims; want real-%s, 2 of 32", got.GetNode(), len(got.GetEmbeddings()), got.GetDimensions(), k)
			}
			direct, err := dial(t, addrs[k]).Embed(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			for i := range direct.GetEmbeddings() {
				if !slices.Equal(got.GetEmbeddings()[i].GetValues(), direct.GetEmbeddings()[i].GetValues()) {
					t.Errorf("embedding %d through the router differs from the node's", i)
				}
			}
		})
	}
	_, err := c.Embed(t.Context(), &inferencev1.EmbedRequest{Model: realModel, Inputs: []string{"a"}})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Embed with a causal LM: got %v, want FAILED_PRECONDITION", err)
	}
}
