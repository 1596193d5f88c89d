package mesh

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"path/filepath"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"

	"github.com/bitnet-mesh/bitnet-mesh/shared/telemetry"
)

// TestUpTrace runs the one-process mesh with a recording tracer, pushes a
// model and generates over REST with a W3C traceparent: the first request
// makes the node pull the model from the registry, so one trace holds the
// REST request, the router's choice, the node's RPC, the registry pull
// (and the registry's own RPC spans under it) and the generation's phases;
// then a quantize job created in a trace records its phases there.
func TestUpTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan Endpoints, 1)
	done := make(chan error, 1)
	cfg := Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(), Threads: 1, Tracing: telemetry.New(tp)}
	go func() { done <- Up(ctx, cfg, func(e Endpoints) { ready <- e }) }()
	var e Endpoints
	select {
	case e = <-ready:
	case err := <-done:
		t.Fatalf("Up ended early: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("not ready within 20 s")
	}
	defer func() { cancel(); <-done }()
	c := dialSDK(t, e.GRPC.String())
	if _, err := c.Registry().Push(ctx, "tiny", "../../testdata/models/tiny-gqa-tied-f32", nil); err != nil {
		t.Fatal(err)
	}
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	req, err := http.NewRequest(http.MethodPost, "http://"+e.HTTP.String()+"/v1/generate",
		strings.NewReader(`{"model":"tiny","prompt":"Light","max_tokens":2}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("generate: got %d %s, want 200", resp.StatusCode, body)
	}
	want := []string{"HTTP POST", "router.choose", "registry.pull", "bitnet.registry.v1.RegistryService/ResolveModel", "bitnet.registry.v1.RegistryService/DownloadBlob", "node.queue", "node.prefill", "node.decode"}
	inTrace := map[string]bool{}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID().String() == traceID {
				inTrace[s.Name()] = true
			}
		}
		if allIn(inTrace, want) || time.Now().After(deadline) {
			break
		}
	}
	for _, w := range want {
		if !inTrace[w] {
			t.Errorf("no span %q in the caller's trace; have %v", w, inTrace)
		}
	}

	// A quantize job created in a trace records its phases in that trace,
	// though they run after the CreateJob call returned.
	ckpt := filepath.Join(t.TempDir(), "wide")
	writeWideCheckpoint(t, ckpt)
	pushed, err := c.Registry().Push(ctx, "wide-f32", ckpt, nil)
	if err != nil {
		t.Fatal(err)
	}
	topts, err := telemetry.New(tp).ClientOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(e.GRPC.String(), append(topts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	jctx, root := tp.Tracer("test").Start(ctx, "test.quantize")
	job, err := quantizerv1.NewQuantizerServiceClient(conn).CreateJob(jctx, &quantizerv1.CreateJobRequest{
		Source: &quantizerv1.Source{Source: &quantizerv1.Source_Model{Model: pushed.Ref}},
		Target: modelv1.QuantType_QUANT_TYPE_TQ2_0,
		Output: &quantizerv1.Output{Name: "wide"},
		Calibration: &quantizerv1.Calibration{
			TextSource: &quantizerv1.Calibration_Text{Text: "Light is refracted by the prism into colours."},
			MaxTokens:  24, ContextLength: 24,
		},
	})
	root.End()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Quantizer().Watch(ctx, job.GetJob().GetJobId(), nil); err != nil {
		t.Fatal(err)
	}
	jobTrace := root.SpanContext().TraceID()
	phases := []string{"quantize.job", "quantize.fetching", "quantize.loading", "quantize.quantizing", "quantize.uploading"}
	got := map[string]bool{}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID() == jobTrace {
				got[s.Name()] = true
			}
		}
		if allIn(got, phases) || time.Now().After(deadline) {
			break
		}
	}
	for _, w := range phases {
		if !got[w] {
			t.Errorf("no span %q in the CreateJob caller's trace; have %v", w, got)
		}
	}
}

func allIn(have map[string]bool, want []string) bool {
	for _, w := range want {
		if !have[w] {
			return false
		}
	}
	return true
}
