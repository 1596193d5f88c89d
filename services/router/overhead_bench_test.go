package router_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/services/inference"
	"github.com/bitnet-mesh/bitnet-mesh/services/router"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// BenchmarkMeshOverhead compares generation through the router and a real
// inference node (two loopback gRPC hops) with the same scheduler called in
// process, on a model named by BITNET_BENCH_GGUF (e.g. the 2B4T shape from
// tools/randmodel), with 1 and 16 concurrent streams of 32 greedy tokens:
//
//	go run ./tools/randmodel -out /tmp/bitnet-2b.gguf
//	BITNET_BENCH_GGUF=/tmp/bitnet-2b.gguf go test -run X -bench MeshOverhead -benchtime 2x ./services/router/
func BenchmarkMeshOverhead(b *testing.B) {
	path := os.Getenv("BITNET_BENCH_GGUF")
	if path == "" {
		b.Skip("set BITNET_BENCH_GGUF to a .gguf model")
	}
	const gen = 32
	name := strings.TrimSuffix(filepath.Base(path), ".gguf")
	m, err := model.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	// The node's prompt: BOS, then the text as ordinary tokens.
	prompt := m.Tokenizer().EncodeOrdinary("The light of the sun is")
	if bos, ok := m.Tokenizer().BOS(); ok {
		prompt = append([]int{bos}, prompt...)
	}
	c := nodeBehindRouter(b, filepath.Dir(path))
	zero := float32(0)
	for _, streams := range []int{1, 16} {
		b.Run(fmt.Sprintf("inprocess/streams=%d", streams), func(b *testing.B) {
			s, err := inference.NewScheduler(m, m.Tokenizer(), inference.WithMaxBatch(16))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			measure(b, streams, gen, func(ctx context.Context) (time.Duration, error) {
				start := time.Now()
				st, err := s.Submit(ctx, inference.Request{Prompt: prompt, MaxTokens: gen, EndTokens: []int{-1}})
				if err != nil {
					return 0, err
				}
				var ttft time.Duration
				for {
					ev, err := st.Recv(ctx)
					if err != nil {
						return 0, err
					}
					if ttft == 0 && len(ev.TokenIDs) > 0 {
						ttft = time.Since(start)
					}
					if ev.Final {
						return ttft, nil
					}
				}
			})
		})
		b.Run(fmt.Sprintf("router/streams=%d", streams), func(b *testing.B) {
			req := &inferencev1.GenerateRequest{Model: name, Prompt: "The light of the sun is", MaxTokens: gen,
				Temperature: &zero}
			measure(b, streams, gen, func(ctx context.Context) (time.Duration, error) {
				start := time.Now()
				st, err := c.Generate(ctx, req)
				if err != nil {
					return 0, err
				}
				var ttft time.Duration
				for {
					msg, err := st.Recv()
					if errors.Is(err, io.EOF) {
						return ttft, nil
					}
					if err != nil {
						return 0, err
					}
					if ttft == 0 && len(msg.GetTokenIds()) > 0 {
						ttft = time.Since(start)
					}
				}
			})
		})
	}
}

// measure runs streams concurrent generations per iteration and reports the
// aggregate tokens/s and the p50 time to first token.
func measure(b *testing.B, streams, gen int, one func(context.Context) (time.Duration, error)) {
	if _, err := one(b.Context()); err != nil { // warm up: the node loads the model
		b.Fatal(err)
	}
	var ttfts []time.Duration
	var mu sync.Mutex
	start := time.Now()
	for b.Loop() {
		var wg sync.WaitGroup
		for range streams {
			wg.Go(func() {
				ttft, err := one(b.Context())
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				ttfts = append(ttfts, ttft)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	elapsed := time.Since(start)
	slices.Sort(ttfts)
	if len(ttfts) > 0 {
		b.ReportMetric(float64(ttfts[len(ttfts)/2].Microseconds())/1000, "p50-ttft-ms")
	}
	b.ReportMetric(float64(len(ttfts)*gen)/elapsed.Seconds(), "tok/s")
}

// nodeBehindRouter starts one real inference node serving the models in dir
// (NAME.gguf) and a router over it; it returns the router's client.
func nodeBehindRouter(b *testing.B, dir string) inferencev1.InferenceServiceClient {
	reg := discovery.NewMemory()
	b.Cleanup(func() { _ = reg.Close() })
	s, err := inference.NewServer(inference.DirFetcher{Root: dir}, inference.WithNodeName("bench"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	nodeAddr := serveGRPC(b, s.Register, true)
	meta := router.NodeMeta{Hardware: s.Hardware(), Version: "bench", StartTime: time.Now()}
	host, port, _ := net.SplitHostPort(nodeAddr)
	p, _ := strconv.Atoi(port)
	inst := discovery.Instance{ID: "bench", Service: router.ServiceName, Address: host, Port: p, Meta: meta.Meta()}
	if err := reg.Register(b.Context(), inst, discovery.WithCheckInterval(time.Second)); err != nil {
		b.Fatal(err)
	}
	r, err := router.New(router.WithRegistry(reg))
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Close() })
	c := dial(b, serveGRPC(b, func(g grpc.ServiceRegistrar) { r.Register(g) }, false))
	for i := 0; ; i++ { // wait until the router sees the node
		resp, err := c.ListNodes(b.Context(), &inferencev1.ListNodesRequest{})
		if err == nil && len(resp.GetNodes()) == 1 && resp.GetNodes()[0].GetHealthy() {
			return c
		}
		if i > 500 {
			b.Fatalf("router sees %v (err %v), want the node", resp.GetNodes(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serveGRPC serves register's services (and health when withHealth) on a
// loopback port until the benchmark ends.
func serveGRPC(b *testing.B, register func(grpc.ServiceRegistrar), withHealth bool) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	g := grpc.NewServer()
	register(g)
	if withHealth {
		healthpb.RegisterHealthServer(g, health.NewServer())
	}
	go func() { _ = g.Serve(lis) }() // ends with Stop in the cleanup
	b.Cleanup(g.Stop)
	return lis.Addr().String()
}
