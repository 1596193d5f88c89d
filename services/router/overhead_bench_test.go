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
// inference node (two loopback gRPC hops), straight to the node (one hop),
// and with the same scheduler called in process, on a model named by
// BITNET_BENCH_GGUF (e.g. the 2B4T shape from tools/randmodel), with 1 and
// 16 concurrent streams of 128 greedy tokens, as llama-bench's tg128
// (BITNET_BENCH_GEN sets another count: each stream's prompt is prefilled
// too, so short generations weigh the prefill more; with 32 tokens the 16/1
// ratio on 2 cores drops from about 4.5x to 3.6x):
//
//	go run ./tools/randmodel -out /tmp/bitnet-2b.gguf
//	BITNET_BENCH_GGUF=/tmp/bitnet-2b.gguf go test -run X -bench MeshOverhead -benchtime 4x ./services/router/
//
// This machine is shared and its memory bandwidth drifts by tens of percent
// within minutes, so every iteration runs all arms back to back (in a
// rotating order) and the overheads are reported from those pairs: the
// median over iterations of each arm's tokens/s relative to in-process, and
// of its p50 time to first token minus in-process's.
func BenchmarkMeshOverhead(b *testing.B) {
	path := os.Getenv("BITNET_BENCH_GGUF")
	if path == "" {
		b.Skip("set BITNET_BENCH_GGUF to a .gguf model")
	}
	gen := 128
	if v := os.Getenv("BITNET_BENCH_GEN"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("BITNET_BENCH_GEN=%q: want a token count >= 1", v)
		}
		gen = n
	}
	name := strings.TrimSuffix(filepath.Base(path), ".gguf")
	m, err := model.Load(path, model.WithKVType(model.KVFloat16)) // as the node's default
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	// The node's prompt: BOS, then the text as ordinary tokens.
	prompt := m.Tokenizer().EncodeOrdinary("The light of the sun is")
	if bos, ok := m.Tokenizer().BOS(); ok {
		prompt = append([]int{bos}, prompt...)
	}
	s, err := inference.NewScheduler(m, m.Tokenizer(), inference.WithMaxBatch(16))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	viaRouter, direct := nodeBehindRouter(b, filepath.Dir(path))
	zero := float32(0)
	req := &inferencev1.GenerateRequest{Model: name, Prompt: "The light of the sun is", MaxTokens: uint32(gen), Temperature: &zero}
	arms := []benchArm{
		{"inprocess", func(ctx context.Context) (time.Duration, error) { return inProcess(ctx, s, prompt, gen) }},
		{"direct", func(ctx context.Context) (time.Duration, error) { return overGRPC(ctx, direct, req) }},
		{"router", func(ctx context.Context) (time.Duration, error) { return overGRPC(ctx, viaRouter, req) }},
	}
	for _, a := range arms { // warm up: the node loads the model
		if _, err := a.one(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	// Time to first token alone: one-token generations on one stream, many
	// cheap samples per arm in a rotating order, so that p50s and paired
	// differences resolve well below a millisecond.
	first := &inferencev1.GenerateRequest{Model: name, Prompt: req.GetPrompt(), MaxTokens: 1, Temperature: &zero}
	ttftArms := []benchArm{
		{"inprocess", func(ctx context.Context) (time.Duration, error) { return inProcess(ctx, s, prompt, 1) }},
		{"direct", func(ctx context.Context) (time.Duration, error) { return overGRPC(ctx, direct, first) }},
		{"router", func(ctx context.Context) (time.Duration, error) { return overGRPC(ctx, viaRouter, first) }},
	}
	b.Run("ttft", func(b *testing.B) {
		ms := make([][]float64, len(ttftArms)) // ms[arm][iteration]
		for i := 0; b.Loop(); i++ {
			for k := range ttftArms {
				ai := (i + k) % len(ttftArms)
				d, err := ttftArms[ai].one(b.Context())
				if err != nil {
					b.Fatal(err)
				}
				ms[ai] = append(ms[ai], float64(d.Microseconds())/1000)
			}
		}
		delta := func(a, c int) float64 {
			d := make([]float64, len(ms[a]))
			for i := range d {
				d[i] = ms[a][i] - ms[c][i]
			}
			return median(d)
		}
		for ai, a := range ttftArms {
			b.ReportMetric(median(ms[ai]), a.name+"/p50-ttft-ms")
		}
		b.ReportMetric(delta(2, 1), "router-vs-direct-ms")
		b.ReportMetric(delta(2, 0), "router-vs-inprocess-ms")
		b.ReportMetric(delta(1, 0), "direct-vs-inprocess-ms")
	})
	b.Run("interleaved", func(b *testing.B) {
		// rounds[i][streams][arm]
		var rounds [][2][]armRound
		for b.Loop() {
			var r [2][]armRound
			for si, streams := range []int{1, 16} {
				r[si] = make([]armRound, len(arms))
				for k := range arms {
					ai := (len(rounds) + k) % len(arms)
					r[si][ai] = runRound(b, arms[ai], streams, gen)
				}
			}
			rounds = append(rounds, r)
		}
		for si, streams := range []int{1, 16} {
			for ai, a := range arms {
				tps := make([]float64, len(rounds))
				ttft := make([]float64, len(rounds))
				for i, r := range rounds {
					tps[i], ttft[i] = r[si][ai].tokPerS, r[si][ai].ttftMS
				}
				b.ReportMetric(median(tps), fmt.Sprintf("%s/s%d/tok/s", a.name, streams))
				b.ReportMetric(median(ttft), fmt.Sprintf("%s/s%d/p50-ttft-ms", a.name, streams))
				if ai == 0 {
					continue
				}
				loss := make([]float64, len(rounds))
				dttft := make([]float64, len(rounds))
				hop := make([]float64, len(rounds))
				for i, r := range rounds {
					loss[i] = 100 * (1 - r[si][ai].tokPerS/r[si][0].tokPerS)
					dttft[i] = r[si][ai].ttftMS - r[si][0].ttftMS
					hop[i] = r[si][ai].ttftMS - r[si][ai-1].ttftMS
				}
				b.ReportMetric(median(loss), fmt.Sprintf("%s/s%d/loss-%%", a.name, streams))
				b.ReportMetric(median(dttft), fmt.Sprintf("%s/s%d/ttft-vs-inprocess-ms", a.name, streams))
				if a.name == "router" {
					b.ReportMetric(median(hop), fmt.Sprintf("router/s%d/ttft-vs-direct-ms", streams))
				}
			}
		}
		for ai, a := range arms {
			ratio := make([]float64, len(rounds))
			for i, r := range rounds {
				ratio[i] = r[1][ai].tokPerS / r[0][ai].tokPerS
			}
			b.ReportMetric(median(ratio), a.name+"/s16-vs-s1-x")
		}
	})
}

// benchArm is one way of running a generation; one returns its time to
// first token.
type benchArm struct {
	name string
	one  func(context.Context) (time.Duration, error)
}

// armRound is one arm's result for one iteration.
type armRound struct {
	tokPerS, ttftMS float64
}

// runRound runs streams concurrent generations of arm a.
func runRound(b *testing.B, a benchArm, streams, gen int) armRound {
	var ttfts []time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range streams {
		wg.Go(func() {
			ttft, err := a.one(b.Context())
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
	elapsed := time.Since(start)
	if len(ttfts) == 0 {
		b.FailNow()
	}
	slices.Sort(ttfts)
	return armRound{
		tokPerS: float64(len(ttfts)*gen) / elapsed.Seconds(),
		ttftMS:  float64(ttfts[len(ttfts)/2].Microseconds()) / 1000,
	}
}

// inProcess generates gen tokens with the scheduler directly.
func inProcess(ctx context.Context, s *inference.Scheduler, prompt []int, gen int) (time.Duration, error) {
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
			if n := ev.Usage.CompletionTokens; n != gen {
				return 0, fmt.Errorf("in process: %d tokens, want %d", n, gen)
			}
			return ttft, nil
		}
	}
}

// overGRPC generates with c and checks that every token came.
func overGRPC(ctx context.Context, c inferencev1.InferenceServiceClient, req *inferencev1.GenerateRequest) (time.Duration, error) {
	start := time.Now()
	st, err := c.Generate(ctx, req)
	if err != nil {
		return 0, err
	}
	var ttft time.Duration
	for {
		msg, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return 0, errors.New("stream ended without a final message")
		}
		if err != nil {
			return 0, err
		}
		if ttft == 0 && len(msg.GetTokenIds()) > 0 {
			ttft = time.Since(start)
		}
		if msg.GetFinishReason() != inferencev1.FinishReason_FINISH_REASON_UNSPECIFIED {
			if n := msg.GetUsage().GetCompletionTokens(); n != req.GetMaxTokens() {
				return 0, fmt.Errorf("over gRPC: %d tokens, want %d (finish %v)", n, req.GetMaxTokens(), msg.GetFinishReason())
			}
			return ttft, nil
		}
	}
}

func median(x []float64) float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// nodeBehindRouter starts one real inference node serving the models in dir
// (NAME.gguf) and a router over it; it returns the router's client and the
// node's.
func nodeBehindRouter(b *testing.B, dir string) (viaRouter, direct inferencev1.InferenceServiceClient) {
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
			return c, dial(b, nodeAddr)
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
