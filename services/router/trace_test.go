package router_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/bitnet-mesh/bitnet-mesh/services/inference"
	"github.com/bitnet-mesh/bitnet-mesh/services/router"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
	"github.com/bitnet-mesh/bitnet-mesh/shared/server"
	"github.com/bitnet-mesh/bitnet-mesh/shared/telemetry"
)

// serveTraced runs a shared/server with tracing t on loopback until the
// test ends.
func serveTraced(t *testing.T, tr *telemetry.Tracing, opts ...server.Option) *server.Server {
	t.Helper()
	s, err := server.New(append([]server.Option{server.WithGRPCAddr("127.0.0.1:0"), server.WithHTTPAddr("127.0.0.1:0"),
		server.WithTracing(tr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// TestTraceAcrossHops sends a REST Generate with a W3C traceparent to a
// router server, which routes it over real gRPC to an inference node
// server: every span (the HTTP request, the gateway's and router's RPCs,
// router.choose with the candidates' scores, the node's RPC and its queue,
// prefill and decode phases) is in the caller's trace, parented hop by hop.
func TestTraceAcrossHops(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr := telemetry.New(tp)

	node, err := inference.NewServer(inference.DirFetcher{Root: realModels}, inference.WithNodeName("traced"), inference.WithVersion("test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Close() })
	ns := serveTraced(t, tr, server.WithRegister(func(g *grpc.Server) { node.Register(g) }), server.WithHTTPAddr(""))

	reg := discovery.NewMemory()
	t.Cleanup(func() { _ = reg.Close() })
	meta := router.NodeMeta{Hardware: node.Hardware(), Version: "test", StartTime: time.Now()}
	port := ns.Addr().(*net.TCPAddr).Port
	if err := reg.Register(context.Background(), discovery.Instance{ID: "traced", Service: router.ServiceName,
		Address: "127.0.0.1", Port: port, Meta: meta.Meta()}, discovery.WithCheckInterval(time.Second)); err != nil {
		t.Fatal(err)
	}
	r, err := router.New(router.WithRegistry(reg), router.WithTracing(tr))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); _ = r.Close() })
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	rs := serveTraced(t, tr, r.ServerOptions()...)
	deadline := time.Now().Add(10 * time.Second)
	for r.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("router sees no node after 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	body := `{"model":"` + realModel + `","prompt":"Light","max_tokens":3,"temperature":0}`
	req, err := http.NewRequest(http.MethodPost, "http://"+rs.HTTPAddr().String()+"/v1/generate", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(out), "finish_reason") {
		t.Fatalf("generate: got %d %s, want 200 with a finish_reason", resp.StatusCode, out)
	}

	// The servers end their spans as the handlers return; give the last
	// ones a moment after the response.
	want := []string{"HTTP POST", "bitnet.inference.v1.InferenceService/Generate", "router.choose", "node.queue", "node.prefill", "node.decode"}
	var spans []sdktrace.ReadOnlySpan
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		spans = rec.Ended()
		if missingSpan(spans, want) == "" || time.Now().After(deadline) {
			break
		}
	}
	if m := missingSpan(spans, want); m != "" {
		t.Fatalf("no span %q among %v", m, names(spans))
	}
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	generates := 0
	for _, s := range spans {
		if got := s.SpanContext().TraceID().String(); got != traceID {
			t.Errorf("span %s: got trace %s, want the caller's %s", s.Name(), got, traceID)
		}
		byID[s.SpanContext().SpanID()] = s
		if s.Name() == "bitnet.inference.v1.InferenceService/Generate" {
			generates++
		}
	}
	// Gateway client + router server, router client + node server.
	if generates != 4 {
		t.Errorf("got %d Generate RPC spans, want 4 (two gRPC hops, client and server each): %v", generates, names(spans))
	}
	for _, s := range spans {
		switch s.Name() {
		case "router.choose":
			var score bool
			for _, kv := range s.Attributes() {
				if kv.Key == "bitnet.candidate.traced.score" {
					score = true
				}
			}
			if !score {
				t.Errorf("router.choose: got attributes %v, want bitnet.candidate.traced.score", s.Attributes())
			}
		case "node.queue", "node.prefill", "node.decode":
			// parent: the node's server span, whose parent is the router's client span
			p, ok := byID[s.Parent().SpanID()]
			if !ok || p.SpanKind() != trace.SpanKindServer {
				t.Errorf("%s: got parent %v, want the node's server span", s.Name(), p)
				continue
			}
			if pp, ok := byID[p.Parent().SpanID()]; !ok || pp.SpanKind() != trace.SpanKindClient {
				t.Errorf("%s: the node's span has parent %v, want the router's client span", s.Name(), pp)
			}
		case "HTTP POST":
			if got := s.Parent().SpanID().String(); got != "00f067aa0ba902b7" {
				t.Errorf("HTTP span: got parent %s, want the traceparent's 00f067aa0ba902b7", got)
			}
		}
	}
}

func missingSpan(spans []sdktrace.ReadOnlySpan, want []string) string {
	have := map[string]bool{}
	for _, s := range spans {
		have[s.Name()] = true
	}
	for _, w := range want {
		if !have[w] {
			return w
		}
	}
	return ""
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name() + "(" + s.SpanKind().String() + ")"
	}
	return out
}
