package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/requestid"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metrics"
)

// threeNodes starts nodes capped at generic, avx2 and avx512, as in the
// mesh's end-to-end test, and a router over them.
func threeNodes(t *testing.T, opts ...nodeOpt) (*Router, inferencev1.InferenceServiceClient, map[string]*testNode) {
	t.Helper()
	reg := discovery.NewMemory()
	t.Cleanup(func() { _ = reg.Close() })
	nodes := map[string]*testNode{}
	for _, k := range []kernels.Path{kernels.Generic, kernels.AVX2, kernels.AVX512} {
		nodes[string(k)] = startNode(t, reg, "node-"+string(k), k, 0, opts...)
	}
	r, c := startRouter(t, reg)
	waitNodes(t, r, "node-avx2", "node-avx512", "node-generic")
	return r, c, nodes
}

func TestHardwareConstraints(t *testing.T) {
	_, c, _ := threeNodes(t)
	tests := []struct {
		name       string
		require    []string
		prefer     string
		wantNode   string
		wantCode   codes.Code
		wantInErr  []string
		wantKernel string
	}{
		{name: "require avx512", require: []string{"avx512"}, wantNode: "node-avx512", wantKernel: "avx512"},
		{name: "require flag", require: []string{"AVX512VNNI"}, wantNode: "node-avx512", wantKernel: "avx512"},
		{name: "unconstrained idle picks fastest", wantNode: "node-avx512", wantKernel: "avx512"},
		{name: "prefer avx2", prefer: "avx2", wantNode: "node-avx2", wantKernel: "avx2"},
		{name: "prefer generic", prefer: "generic", wantNode: "node-generic", wantKernel: "generic"},
		{name: "hard beats soft", require: []string{"avx2"}, prefer: "generic", wantNode: "node-avx512", wantKernel: "avx512"},
		{name: "unmet", require: []string{"neon"}, wantCode: codes.FailedPrecondition,
			wantInErr: []string{"no inference node offers neon", "node-avx512: kernels generic,avx2,avx512", "node-generic: kernels generic"}},
		{name: "unmet together", require: []string{"avx512", "dotprod"}, wantCode: codes.FailedPrecondition, wantInErr: []string{"dotprod"}},
		{name: "unknown requirement", require: []string{"sse9"}, wantCode: codes.InvalidArgument, wantInErr: []string{"sse9"}},
		{name: "bad prefer", prefer: "quantum", wantCode: codes.InvalidArgument, wantInErr: []string{"quantum"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 3 {
				node, kernel, text, err := generate(t.Context(), c, &inferencev1.GenerateRequest{
					Model: "tiny", Prompt: "x", Require: tt.require, PreferKernel: tt.prefer})
				if tt.wantCode != codes.OK {
					if status.Code(err) != tt.wantCode {
						t.Fatalf("got error %v, want code %v", err, tt.wantCode)
					}
					for _, s := range tt.wantInErr {
						if !strings.Contains(err.Error(), s) {
							t.Errorf("got error %q, want it to contain %q", err, s)
						}
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if node != tt.wantNode || kernel != tt.wantKernel || text != "t0t1t2t3" {
					t.Fatalf("got node %q kernel %q text %q, want %q %q t0t1t2t3", node, kernel, text, tt.wantNode, tt.wantKernel)
				}
			}
		})
	}
}

func TestFirstMessageNamesNode(t *testing.T) {
	_, c, _ := threeNodes(t)
	stream, err := c.Generate(t.Context(), &inferencev1.GenerateRequest{Model: "tiny", Require: []string{"avx2"}, PreferKernel: "avx2"})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if msg.GetNode() != "node-avx2" || msg.GetKernel() != "avx2" {
		t.Errorf("got first message node %q kernel %q, want node-avx2 avx2", msg.GetNode(), msg.GetKernel())
	}
}

func TestUnconstrainedLoadSpreads(t *testing.T) {
	t.Run("concurrent over tiers", func(t *testing.T) {
		hold := make(chan struct{})
		_, c, nodes := threeNodes(t, withHold(hold))
		const streams = 12
		var wg sync.WaitGroup
		errs := make(chan error, streams)
		for range streams {
			wg.Go(func() {
				if _, _, _, err := generate(t.Context(), c, &inferencev1.GenerateRequest{Model: "tiny"}); err != nil {
					errs <- err
				}
			})
		}
		deadline := time.Now().Add(10 * time.Second)
		for total(nodes) < streams && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		got := map[string]int64{}
		for k, n := range nodes {
			got[k] = n.started.Load()
		}
		close(hold)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for k, v := range got {
			if v == 0 {
				t.Errorf("got streams per node %v, want every node used (%s got none)", got, k)
			}
		}
		t.Logf("streams per node: %v", got) // tiers: see TestChoose
	})
	t.Run("sequential over equal nodes", func(t *testing.T) {
		reg := discovery.NewMemory()
		t.Cleanup(func() { _ = reg.Close() })
		a := startNode(t, reg, "a", kernels.AVX2, 0)
		b := startNode(t, reg, "b", kernels.AVX2, 0)
		r, c := startRouter(t, reg)
		waitNodes(t, r, "a", "b")
		const n = 40
		for range n {
			if _, _, _, err := generate(t.Context(), c, &inferencev1.GenerateRequest{Model: "tiny"}); err != nil {
				t.Fatal(err)
			}
		}
		if ca, cb := a.calls.Load(), b.calls.Load(); ca < n/5 || cb < n/5 {
			t.Errorf("got %d and %d requests on two equal nodes, want each at least %d", ca, cb, n/5)
		}
	})
}

func total(nodes map[string]*testNode) int64 {
	var s int64
	for _, n := range nodes {
		s += n.started.Load()
	}
	return s
}

func TestRetryBeforeFirstToken(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(*testNode)
	}{
		{"unavailable", func(n *testNode) { n.failBefore.Store(uint32(codes.Unavailable)) }},
		{"queue full", func(n *testNode) { n.failBefore.Store(uint32(codes.ResourceExhausted)) }},
		{"killed", func(n *testNode) { n.kill() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := discovery.NewMemory()
			t.Cleanup(func() { _ = reg.Close() })
			// A long check interval keeps the broken node listed: the router
			// must find out from the failure itself.
			fast := startNode(t, reg, "fast", kernels.AVX512, time.Hour)
			slow := startNode(t, reg, "slow", kernels.Generic, time.Hour)
			r, c := startRouter(t, reg)
			waitNodes(t, r, "fast", "slow")
			tt.breakIt(fast)
			for i := range 5 {
				node, _, text, err := generate(t.Context(), c, &inferencev1.GenerateRequest{Model: "tiny"})
				if err != nil || node != "slow" || text != "t0t1t2t3" {
					t.Fatalf("request %d: got node %q text %q err %v, want slow t0t1t2t3 nil", i, node, text, err)
				}
			}
			if got := fast.calls.Load(); got > 1 {
				t.Errorf("got %d calls on the failed node, want at most 1 (avoided after failing)", got)
			}
			if got := slow.calls.Load(); got != 5 {
				t.Errorf("got %d calls on the good node, want 5", got)
			}
		})
	}
}

func TestNoRetryAfterFirstToken(t *testing.T) {
	reg := discovery.NewMemory()
	t.Cleanup(func() { _ = reg.Close() })
	hold := make(chan struct{})
	defer close(hold)
	fast := startNode(t, reg, "fast", kernels.AVX512, time.Hour, withHold(hold))
	slow := startNode(t, reg, "slow", kernels.Generic, time.Hour)
	r, c := startRouter(t, reg)
	waitNodes(t, r, "fast", "slow")
	stream, err := c.Generate(t.Context(), &inferencev1.GenerateRequest{Model: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	if msg, err := stream.Recv(); err != nil || msg.GetNode() != "fast" {
		t.Fatalf("got first message %v err %v, want one from fast", msg, err)
	}
	fast.kill()
	_, err = stream.Recv()
	if status.Code(err) != codes.Unavailable {
		t.Errorf("got %v after the node died mid-stream, want Unavailable", err)
	}
	if got := slow.calls.Load(); got != 0 {
		t.Errorf("got %d calls on another node, want 0: a started stream is never retried", got)
	}
}

func TestRetryLimit(t *testing.T) {
	reg := discovery.NewMemory()
	t.Cleanup(func() { _ = reg.Close() })
	var nodes []*testNode
	for i := range 4 {
		n := startNode(t, reg, fmt.Sprintf("n%d", i), kernels.AVX2, time.Hour)
		n.failBefore.Store(uint32(codes.Unavailable))
		nodes = append(nodes, n)
	}
	mreg := metrics.NewRegistry()
	r, c := startRouter(t, reg, WithRetry(1, 0), WithMetrics(mreg))
	waitNodes(t, r, "n0", "n1", "n2", "n3")
	_, _, _, err := generate(t.Context(), c, &inferencev1.GenerateRequest{Model: "tiny"})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "failing") {
		t.Errorf("got %v, want the last node's Unavailable", err)
	}
	var calls int64
	for _, n := range nodes {
		calls += n.calls.Load()
	}
	if calls != 2 {
		t.Errorf("got %d attempts with WithRetry(1), want 2", calls)
	}
	text := mustText(t, mreg)
	for _, want := range []string{MetricRouted, MetricRetries, MetricNodes + " 4", `code="Unavailable"`} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
}

func TestDeadNodeDroppedWithin5s(t *testing.T) {
	reg := discovery.NewMemory()
	t.Cleanup(func() { _ = reg.Close() })
	nodes := map[string]*testNode{}
	for _, k := range []kernels.Path{kernels.Generic, kernels.AVX2, kernels.AVX512} {
		nodes[string(k)] = startNode(t, reg, "node-"+string(k), k, 0)
	}
	r, c := startRouter(t, reg)
	waitNodes(t, r, "node-avx2", "node-avx512", "node-generic")

	// Traffic from 4 clients while the favourite node dies: every request
	// that had not started streaming must succeed.
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lost []error
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				_, _, text, err := generate(t.Context(), c, &inferencev1.GenerateRequest{Model: "tiny"})
				if err != nil && text == "" {
					mu.Lock()
					lost = append(lost, err)
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	dead := nodes["avx512"]
	dead.kill()
	killed := time.Now()
	for {
		gone := true
		for _, s := range r.table.snapshot() {
			if s.id == "node-avx512" {
				gone = false
			}
		}
		if gone {
			break
		}
		if time.Since(killed) > 5*time.Second {
			t.Fatalf("router still lists the dead node 5 s after it died")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("dead node dropped after %v", time.Since(killed).Round(time.Millisecond))
	calls := dead.calls.Load()
	time.Sleep(300 * time.Millisecond) // more traffic after the drop
	stop()
	wg.Wait()
	if got := dead.calls.Load(); got != calls {
		t.Errorf("got %d calls on the dead node after it was dropped, want 0", got-calls)
	}
	for _, err := range lost {
		t.Errorf("request lost before its first token: %v", err)
	}
	if nodes["avx2"].calls.Load() == 0 {
		t.Errorf("got no traffic on the avx2 node after the avx512 node died")
	}
}

func TestRequestIDPropagates(t *testing.T) {
	reg := discovery.NewMemory()
	t.Cleanup(func() { _ = reg.Close() })
	n := startNode(t, reg, "n", kernels.AVX2, 0)
	r, c := startRouter(t, reg)
	waitNodes(t, r, "n")

	ctx := metadata.AppendToOutgoingContext(t.Context(), requestid.Header, "req-abc")
	if _, _, _, err := generate(ctx, c, &inferencev1.GenerateRequest{Model: "tiny"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Tokenize(ctx, &inferencev1.TokenizeRequest{Model: "tiny", Text: "abc"}); err != nil {
		t.Fatal(err)
	}
	if got := n.ids(); len(got) != 1 || got[0] != "req-abc" {
		t.Errorf("got request IDs %v at the node, want [req-abc]", got)
	}
	if _, _, _, err := generate(t.Context(), c, &inferencev1.GenerateRequest{Model: "tiny"}); err != nil {
		t.Fatal(err)
	}
	if got := n.ids(); len(got) != 2 || got[1] == "" || got[1] == "req-abc" {
		t.Errorf("got request IDs %v at the node, want a fresh second one", got)
	}

}

func TestDeadlinePropagates(t *testing.T) {
	reg := discovery.NewMemory()
	t.Cleanup(func() { _ = reg.Close() })
	hold := make(chan struct{})
	defer close(hold)
	startNode(t, reg, "n", kernels.AVX2, 0, withHold(hold)) // streams stall after the first token
	r, c := startRouter(t, reg)
	waitNodes(t, r, "n")
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, _, err := generate(ctx, c, &inferencev1.GenerateRequest{Model: "tiny"})
	if status.Code(err) != codes.DeadlineExceeded || time.Since(start) > 2*time.Second {
		t.Errorf("got %v after %v, want DeadlineExceeded near 200ms", err, time.Since(start))
	}
	// The node's side of the stream ends too: the router's count drops to 0.
	deadline := time.Now().Add(5 * time.Second)
	for r.table.snapshot()[0].inflight != 0 {
		if time.Now().After(deadline) {
			t.Fatal("router still counts the expired request on the node")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNoNodes(t *testing.T) {
	reg := discovery.NewMemory()
	t.Cleanup(func() { _ = reg.Close() })
	r, c := startRouter(t, reg)
	if err := r.Ready(t.Context()); status.Code(err) != codes.Unavailable {
		t.Errorf("got Ready %v without nodes, want Unavailable", err)
	}
	_, _, _, err := generate(t.Context(), c, &inferencev1.GenerateRequest{Model: "tiny"})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("got %v, want Unavailable", err)
	}
	if _, err := c.ListModels(t.Context(), &inferencev1.ListModelsRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("ListModels: got %v, want Unavailable", err)
	}
	_, _, _, err = generate(t.Context(), c, &inferencev1.GenerateRequest{})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("no model: got %v, want InvalidArgument", err)
	}
	_, _, _, err = generate(t.Context(), c, &inferencev1.GenerateRequest{Model: "../etc"})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad model: got %v, want InvalidArgument", err)
	}
}

func TestUnreadableMetaIgnored(t *testing.T) {
	reg := discovery.NewMemory()
	t.Cleanup(func() { _ = reg.Close() })
	good := startNode(t, reg, "good", kernels.Generic, 0)
	bad := startNode(t, reg, "zbad", kernels.AVX512, 0, withRawMeta(map[string]string{"kernel": "warp"}))
	r, c := startRouter(t, reg)
	waitNodes(t, r, "good")
	for range 5 {
		if node, _, _, err := generate(t.Context(), c, &inferencev1.GenerateRequest{Model: "tiny"}); err != nil || node != "good" {
			t.Fatalf("got node %q err %v, want good", node, err)
		}
	}
	if bad.calls.Load() != 0 || good.calls.Load() != 5 {
		t.Errorf("got %d calls on the node with bad meta, want 0", bad.calls.Load())
	}
	resp, err := c.ListNodes(t.Context(), &inferencev1.ListNodesRequest{})
	if err != nil || len(resp.GetNodes()) != 1 {
		t.Errorf("got ListNodes %v err %v, want just good", resp, err)
	}
}

func TestMetaUpdatesSteerTraffic(t *testing.T) {
	reg := discovery.NewMemory()
	t.Cleanup(func() { _ = reg.Close() })
	a := startNode(t, reg, "a", kernels.AVX2, 0)
	b := startNode(t, reg, "b", kernels.AVX2, 0)
	r, c := startRouter(t, reg)
	waitNodes(t, r, "a", "b") // both checked: UpdateMeta no longer races the first check
	ref, _ := modelv1.ParseRef("tiny@1")
	meta := NodeMeta{Hardware: hwReport(kernels.AVX2), LoadedModels: []*modelv1.ModelRef{ref}}.Meta()
	if err := reg.UpdateMeta(t.Context(), "b", meta); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !slices.ContainsFunc(r.table.snapshot(), func(s nodeSnapshot) bool { return s.id == "b" && s.meta.HasModel(ref) }) {
		if time.Now().After(deadline) {
			t.Fatal("router did not see b's loaded model within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range 10 {
		if node, _, _, err := generate(t.Context(), c, &inferencev1.GenerateRequest{Model: "tiny"}); err != nil || node != "b" {
			t.Fatalf("got node %q err %v, want b, which has tiny loaded", node, err)
		}
	}
	if a.calls.Load() != 0 || b.calls.Load() != 10 {
		t.Errorf("got %d/%d calls on a/b, want 0/10", a.calls.Load(), b.calls.Load())
	}
}

func TestLeavingNodeFinishesItsStreams(t *testing.T) {
	reg := discovery.NewMemory()
	t.Cleanup(func() { _ = reg.Close() })
	hold := make(chan struct{})
	startNode(t, reg, "a", kernels.AVX2, 0, withHold(hold))
	r, c := startRouter(t, reg)
	waitNodes(t, r, "a")
	stream, err := c.Generate(t.Context(), &inferencev1.GenerateRequest{Model: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	n := r.table.snapshot()[0].n
	if err := reg.Deregister(t.Context(), "a"); err != nil { // as a draining node leaves the healthy set
		t.Fatal(err)
	}
	waitNodes(t, r)
	close(hold)
	var got int
	for {
		if _, err := stream.Recv(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("got %v after the node left, want the stream to finish", err)
		}
		got++
	}
	if got != 3 {
		t.Errorf("got %d more messages, want 3", got)
	}
	r.table.mu.RLock()
	closed := n.closed
	r.table.mu.RUnlock()
	if !closed {
		t.Errorf("connection to the node that left is still open after its last stream")
	}
}

func TestPublishMeta(t *testing.T) {
	reg := discovery.NewMemory()
	t.Cleanup(func() { _ = reg.Close() })
	startNode(t, reg, "a", kernels.AVX2, 0)
	r, _ := startRouter(t, reg)
	waitNodes(t, r, "a") // checked once: UpdateMeta no longer races discovery's first check

	var mu sync.Mutex
	state := NodeMeta{Hardware: hwReport(kernels.AVX2), Inflight: 7}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- PublishMeta(ctx, reg, "a", 20*time.Millisecond, func() NodeMeta { mu.Lock(); defer mu.Unlock(); return state })
	}()
	seen := func(inflight int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for r.table.snapshot()[0].meta.Inflight != inflight {
			if time.Now().After(deadline) {
				t.Fatalf("router did not see inflight %d within 5 s", inflight)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	seen(7)
	mu.Lock()
	state.Inflight = 2
	mu.Unlock()
	seen(2)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("got %v when ctx ended, want nil", err)
	}
	if err := PublishMeta(t.Context(), reg, "a", 0, nil); err == nil {
		t.Error("got nil for a zero interval, want an error")
	}
}
