package inference

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// testNode is a server on a loopback gRPC listener.
type testNode struct {
	srv    *Server
	client inferencev1.InferenceServiceClient
	conn   *grpc.ClientConn
	addr   string
	mu     sync.Mutex
	gated  *gatedModel // set by withGate when the model loads
}

// gate returns the gated model, waiting for the model to load.
func (n *testNode) gate(t testing.TB) *gatedModel {
	t.Helper()
	var g *gatedModel
	waitFor(t, "the model to load", func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		g = n.gated
		return g != nil
	})
	return g
}

// withGate makes the node's model a gatedModel, shut or open.
func (n *testNode) withGate(shut bool) Option {
	return WithManager(withModelWrapper(func(m *model.Model) Model {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.gated = newGated(m, shut)
		return n.gated
	}))
}

func startNode(t testing.TB, build func(n *testNode) []Option) *testNode {
	t.Helper()
	return startNodeAt(t, modelsDir, build)
}

// startNodeAt is startNode serving the model directories under root.
func startNodeAt(t testing.TB, root string, build func(n *testNode) []Option) *testNode {
	t.Helper()
	n := &testNode{}
	opts := []Option{WithNodeName("node-a"), WithKernelCap(kernels.Generic), WithManager(WithIdleTTL(0))}
	if build != nil {
		opts = append(opts, build(n)...)
	}
	srv, err := NewServer(DirFetcher{Root: root}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	srv.Register(gs)
	go gs.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	n.srv, n.conn, n.addr, n.client = srv, conn, lis.Addr().String(), inferencev1.NewInferenceServiceClient(conn)
	t.Cleanup(func() {
		n.mu.Lock()
		if n.gated != nil {
			n.gated.open()
		}
		n.mu.Unlock()
		conn.Close()
		gs.Stop()
		srv.Close()
	})
	return n
}

// stats returns the scheduler stats of the node's only loaded model.
func (n *testNode) stats(t testing.TB) Stats {
	t.Helper()
	l := n.srv.Manager().Loaded()
	if len(l) != 1 {
		return Stats{}
	}
	return l[0].Stats
}

func greedyReq(prompt string, maxTokens uint32) *inferencev1.GenerateRequest {
	return &inferencev1.GenerateRequest{Model: tinyName, Prompt: prompt, MaxTokens: maxTokens, Temperature: proto.Float32(0)}
}

// readAll reads a Generate stream to its end.
func readAll(stream grpc.ServerStreamingClient[inferencev1.GenerateResponse]) ([]*inferencev1.GenerateResponse, error) {
	var out []*inferencev1.GenerateResponse
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, msg)
	}
}

func idsOf(msgs []*inferencev1.GenerateResponse) ([]int, string) {
	var ids []int
	var b strings.Builder
	for _, m := range msgs {
		for _, id := range m.GetTokenIds() {
			ids = append(ids, int(id))
		}
		b.WriteString(m.GetText())
	}
	return ids, b.String()
}

func TestGenerateGreedyMatchesDirect(t *testing.T) {
	n := startNode(t, nil)
	m := loadTiny(t, tinyName)
	for _, p := range testPrompts {
		stream, err := n.client.Generate(context.Background(), greedyReq(p, 12))
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := readAll(stream)
		if err != nil {
			t.Fatalf("%q: %v", p, err)
		}
		got, text := idsOf(msgs)
		want := directGreedy(t, m, promptOf(m, p), 12)
		if !slices.Equal(got, want) {
			t.Errorf("%q: got %v, want %v", p, got, want)
		}
		if w := m.Tokenizer().DecodeSkipSpecial(want); text != w {
			t.Errorf("%q: got text %q, want %q", p, text, w)
		}
		first, last := msgs[0], msgs[len(msgs)-1]
		for _, msg := range []*inferencev1.GenerateResponse{first, last} {
			if msg.GetNode() != "node-a" || msg.GetKernel() != "generic" || msg.GetModel().Text() != tinyName+"@1" {
				t.Errorf("%q: got node %q kernel %q model %q, want node-a, generic, %s@1",
					p, msg.GetNode(), msg.GetKernel(), msg.GetModel().Text(), tinyName)
			}
		}
		if last.GetFinishReason() == inferencev1.FinishReason_FINISH_REASON_UNSPECIFIED || last.GetUsage().GetCompletionTokens() != uint32(len(want)) ||
			last.GetUsage().GetPromptTokens() != uint32(len(promptOf(m, p))) || last.GetTimings().GetTotalMs() <= 0 {
			t.Errorf("%q: last message %v lacks finish, usage or timings", p, last)
		}
		for _, msg := range msgs[:len(msgs)-1] {
			if msg.GetFinishReason() != inferencev1.FinishReason_FINISH_REASON_UNSPECIFIED || msg.GetUsage() != nil {
				t.Errorf("%q: a middle message carries the end: %v", p, msg)
			}
		}
	}
}

func TestNodeLoadAfterTraffic(t *testing.T) {
	n := startNode(t, nil)
	stream, err := n.client.Generate(context.Background(), greedyReq("Light", 6))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(stream); err != nil {
		t.Fatal(err)
	}
	info, err := n.client.NodeInfo(context.Background(), &inferencev1.NodeInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if l := info.GetNode().GetLoad(); l.GetTokensPerSecond() <= 0 || l.GetP50FirstTokenMs() <= 0 || l.GetActiveRequests() != 0 {
		t.Errorf("load after one request: got %v, want tokens/s and first-token time, nothing active", l)
	}
}

func TestGenerateEchoAndChat(t *testing.T) {
	n := startNode(t, nil)
	req := greedyReq("Light is", 4)
	req.Echo = true
	stream, err := n.client.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := readAll(stream)
	if err != nil {
		t.Fatal(err)
	}
	if _, text := idsOf(msgs); !strings.HasPrefix(text, "Light is") {
		t.Errorf("echo: got %q, want the prompt first", text)
	}
	chatReq := &inferencev1.GenerateRequest{Model: tinyName, MaxTokens: 4, Temperature: proto.Float32(0), Messages: []*inferencev1.ChatMessage{
		{Role: inferencev1.Role_ROLE_SYSTEM, Content: "Be brief."}, {Role: inferencev1.Role_ROLE_USER, Content: "What is light?"}}}
	stream, err = n.client.Generate(context.Background(), chatReq)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err = readAll(stream)
	if err != nil || len(msgs) == 0 || msgs[len(msgs)-1].GetUsage().GetPromptTokens() < 8 {
		t.Errorf("chat: got %v, %v", msgs, err)
	}
}

func TestGenerateConcurrentStreamsBatch(t *testing.T) {
	const streams = 8
	n := startNode(t, func(n *testNode) []Option { return []Option{n.withGate(true)} })
	m := loadTiny(t, tinyName)
	if _, err := n.client.LoadModel(context.Background(), &inferencev1.LoadModelRequest{Model: tinyName}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make([][]int, streams)
	errs := make([]error, streams)
	for i := range streams {
		wg.Go(func() {
			stream, err := n.client.Generate(context.Background(), greedyReq(testPrompts[i%len(testPrompts)], 8))
			if err == nil {
				var msgs []*inferencev1.GenerateResponse
				msgs, err = readAll(stream)
				results[i], _ = idsOf(msgs)
			}
			errs[i] = err
		})
	}
	waitFor(t, "all streams to be submitted", func() bool { return n.stats(t).Submitted == streams })
	n.gate(t).open()
	wg.Wait()
	for i := range streams {
		want := directGreedy(t, m, promptOf(m, testPrompts[i%len(testPrompts)]), 8)
		if errs[i] != nil || !slices.Equal(results[i], want) {
			t.Errorf("stream %d: got %v, %v; want %v", i, results[i], errs[i], want)
		}
	}
	st := n.stats(t)
	if st.BatchedForwards == 0 || st.MaxBatchSeen < 2 {
		t.Errorf("got %d batched forwards (max batch %d), want batching", st.BatchedForwards, st.MaxBatchSeen)
	}
	if st.Completed != streams {
		t.Errorf("got %d completed, want %d", st.Completed, streams)
	}
}

func TestGenerateCancelFreesSlot(t *testing.T) {
	n := startNode(t, func(n *testNode) []Option { return []Option{n.withGate(true), WithScheduler(WithMaxBatch(1))} })
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := n.client.Generate(ctx, greedyReq("Light", 400))
	if err != nil {
		t.Fatal(err)
	}
	n.gate(t).allow(t) // the prefill: first token
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	// Step by step until the cancellation reaches the server's loop.
	for i := 0; n.stats(t).Cancelled == 0 && i < 400; i++ {
		n.gate(t).tryAllow(5 * time.Millisecond)
	}
	n.gate(t).open()
	if _, err := readAll(stream); status.Code(err) != codes.Canceled {
		t.Errorf("got %v, want Canceled", err)
	}
	waitFor(t, "the slot to free", func() bool { st := n.stats(t); return st.Active == 0 && st.Cancelled == 1 })
	stream, err = n.client.Generate(context.Background(), greedyReq("Light", 3))
	if err != nil {
		t.Fatal(err)
	}
	if msgs, err := readAll(stream); err != nil || len(msgs) == 0 {
		t.Errorf("after cancel: got %d messages, %v", len(msgs), err)
	}
}

func TestGenerateQueueFull(t *testing.T) {
	n := startNode(t, func(n *testNode) []Option {
		return []Option{n.withGate(true), WithQueueSize(1), WithScheduler(WithMaxBatch(1))}
	})
	ctx := context.Background()
	a, err := n.client.Generate(ctx, greedyReq("Light", 2))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first request in the batch", func() bool { return n.stats(t).Active == 1 })
	b, err := n.client.Generate(ctx, greedyReq("Light", 2))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second request queued", func() bool { return n.stats(t).QueueDepth == 1 })
	c, err := n.client.Generate(ctx, greedyReq("Light", 2))
	if err != nil {
		t.Fatal(err)
	}
	_, err = readAll(c)
	st, _ := status.FromError(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("third request: got %v, want ResourceExhausted", err)
	}
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if retry == nil || retry.GetRetryDelay().AsDuration() <= 0 {
		t.Errorf("got details %v, want a RetryInfo with a delay", st.Details())
	}
	n.gate(t).open()
	for _, s := range []grpc.ServerStreamingClient[inferencev1.GenerateResponse]{a, b} {
		if _, err := readAll(s); err != nil {
			t.Errorf("queued request: %v", err)
		}
	}
}

func TestGenerateDeadline(t *testing.T) {
	n := startNode(t, func(n *testNode) []Option { return []Option{n.withGate(true)} })
	if _, err := n.client.LoadModel(context.Background(), &inferencev1.LoadModelRequest{Model: tinyName}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	stream, err := n.client.Generate(ctx, greedyReq("Light", 4))
	if err == nil {
		_, err = readAll(stream)
	}
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("got %v, want DeadlineExceeded", err)
	}
	// The server's deadline is the client's plus the transit time: let it pass
	// before the held step runs.
	waitFor(t, "the request to reach the scheduler", func() bool { return n.stats(t).Submitted == 1 })
	time.Sleep(50 * time.Millisecond)
	n.gate(t).open()
	waitFor(t, "the request to leave", func() bool { st := n.stats(t); return st.Active == 0 && st.QueueDepth == 0 })
	if st := n.stats(t); st.Cancelled != 1 || st.GeneratedTokens != 0 {
		t.Errorf("got %d cancelled, %d tokens generated; want the request cancelled before its first token", st.Cancelled, st.GeneratedTokens)
	}
}

func TestGenerateErrors(t *testing.T) {
	n := startNode(t, nil)
	temp := func(v float32) *float32 { return &v }
	tests := []struct {
		name string
		req  *inferencev1.GenerateRequest
		want codes.Code
	}{
		{"unknown model", &inferencev1.GenerateRequest{Model: "no-such-model", Prompt: "x"}, codes.NotFound},
		{"bad reference", &inferencev1.GenerateRequest{Model: "Tiny@x", Prompt: "x"}, codes.InvalidArgument},
		{"no model", &inferencev1.GenerateRequest{Prompt: "x"}, codes.InvalidArgument},
		{"no prompt", &inferencev1.GenerateRequest{Model: tinyName}, codes.InvalidArgument},
		{"prompt and messages", &inferencev1.GenerateRequest{Model: tinyName, Prompt: "x",
			Messages: []*inferencev1.ChatMessage{{Content: "y"}}}, codes.InvalidArgument},
		{"bad role", &inferencev1.GenerateRequest{Model: tinyName, Messages: []*inferencev1.ChatMessage{{Role: 9, Content: "y"}}}, codes.InvalidArgument},
		{"negative temperature", &inferencev1.GenerateRequest{Model: tinyName, Prompt: "x", Temperature: temp(-1)}, codes.InvalidArgument},
		{"unmet kernel", &inferencev1.GenerateRequest{Model: tinyName, Prompt: "x", Require: []string{"avx512"}}, codes.FailedPrecondition},
		{"unknown requirement", &inferencev1.GenerateRequest{Model: tinyName, Prompt: "x", Require: []string{"warp-drive"}}, codes.InvalidArgument},
		{"long prompt", &inferencev1.GenerateRequest{Model: tinyName, Prompt: strings.Repeat("light ", 600)}, codes.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stream, err := n.client.Generate(context.Background(), tc.req)
			if err == nil {
				_, err = readAll(stream)
			}
			if status.Code(err) != tc.want {
				t.Errorf("got %v, want %v", err, tc.want)
			}
			if st, _ := status.FromError(err); st.Message() == "" {
				t.Error("empty error message")
			}
		})
	}
}

func TestTokenizeDetokenize(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	tok, err := n.client.Tokenize(ctx, &inferencev1.TokenizeRequest{Model: tinyName, Text: "Light is refracted.", AddSpecialTokens: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.GetTokenIds()) < 3 || len(tok.GetTokens()) != len(tok.GetTokenIds()) || tok.GetModel().Text() != tinyName+"@1" {
		t.Fatalf("got %v", tok)
	}
	if !strings.Contains(strings.Join(tok.GetTokens(), ""), "Ġ") {
		t.Errorf("tokens %q: want the vocabulary's byte-level form (Ġ for a space)", tok.GetTokens())
	}
	de, err := n.client.Detokenize(ctx, &inferencev1.DetokenizeRequest{Model: tinyName, TokenIds: tok.GetTokenIds(), SkipSpecialTokens: true})
	if err != nil || de.GetText() != "Light is refracted." {
		t.Errorf("round trip: got %q, %v", de.GetText(), err)
	}
	if _, err := n.client.Detokenize(ctx, &inferencev1.DetokenizeRequest{Model: tinyName, TokenIds: []uint32{1 << 30}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad id: got %v, want InvalidArgument", err)
	}
	if _, err := n.client.Tokenize(ctx, &inferencev1.TokenizeRequest{Model: "missing", Text: "x"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown model: got %v, want NotFound", err)
	}
}

func TestModelsAndNode(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	if _, err := n.client.LoadModel(ctx, &inferencev1.LoadModelRequest{Model: tinyName}); err != nil {
		t.Fatal(err)
	}
	list, err := n.client.ListModels(ctx, &inferencev1.ListModelsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, m := range list.GetModels() {
		if m.GetName() == tinyName {
			found = len(m.GetLoaded()) == 1 && m.GetLoaded()[0].GetNode() == "node-a"
		}
	}
	if !found || len(list.GetModels()) < 2 {
		t.Errorf("list: got %v, want the golden models with %s loaded on node-a", list, tinyName)
	}
	page, err := n.client.ListModels(ctx, &inferencev1.ListModelsRequest{PageSize: 1})
	if err != nil || len(page.GetModels()) != 1 || page.GetNextPageToken() == "" {
		t.Errorf("page of 1: got %v, %v", page, err)
	}
	next, err := n.client.ListModels(ctx, &inferencev1.ListModelsRequest{PageSize: 1, PageToken: page.GetNextPageToken()})
	if err != nil || len(next.GetModels()) != 1 || next.GetModels()[0].GetName() <= page.GetModels()[0].GetName() {
		t.Errorf("second page: got %v, %v", next, err)
	}
	stat, err := n.client.ModelStatus(ctx, &inferencev1.ModelStatusRequest{})
	if err != nil || len(stat.GetLoaded()) != 1 || stat.GetMemoryUsedBytes() == 0 || len(stat.GetCached()) < 2 {
		t.Errorf("status: got %v, %v", stat, err)
	}
	info, err := n.client.NodeInfo(ctx, &inferencev1.NodeInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	node := info.GetNode()
	if node.GetName() != "node-a" || node.GetHardware().GetKernel() != "generic" || node.GetHardware().GetKernelCap() != "generic" ||
		len(node.GetLoaded()) != 1 || node.GetLoad().GetQueueCapacity() == 0 || !node.GetHealthy() {
		t.Errorf("node info: got %v", node)
	}
	un, err := n.client.UnloadModel(ctx, &inferencev1.UnloadModelRequest{Model: tinyName})
	if err != nil || len(un.GetUnloaded()) != 1 {
		t.Errorf("unload: got %v, %v", un, err)
	}
	if _, err := n.client.ListNodes(ctx, &inferencev1.ListNodesRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("list nodes: got %v, want Unimplemented", err)
	}
	if _, err := n.client.LoadModel(ctx, &inferencev1.LoadModelRequest{Model: "missing"}); status.Code(err) != codes.NotFound {
		t.Errorf("load missing: got %v, want NotFound", err)
	}
	if _, err := n.client.LoadModel(ctx, &inferencev1.LoadModelRequest{Model: tinyName, Node: "node-b"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("load on another node: got %v, want InvalidArgument", err)
	}
}
