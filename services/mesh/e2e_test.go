package mesh

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery/consultest"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

func dialSDK(t testing.TB, addr string) *sdk.Client {
	t.Helper()
	c, err := sdk.Dial(context.Background(), addr, sdk.WithRetry(3, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// outcome is one Generate call as the client saw it.
type outcome struct {
	node, kernel string
	started      bool // a message reached the client
	err          error
}

func generate(ctx context.Context, c *sdk.Client, req *inferencev1.GenerateRequest) outcome {
	s, err := c.Inference().Generate(ctx, req)
	if err != nil {
		return outcome{err: err}
	}
	defer s.Close()
	var o outcome
	for s.Next() {
		o.started = true
	}
	if o.err = s.Err(); o.err == nil {
		o.node, o.kernel = s.Final().GetNode(), s.Final().GetKernel()
	}
	return o
}

// unmetFeature is a constraint no node of this machine offers.
func unmetFeature() string {
	if runtime.GOARCH == "arm64" {
		return "avx512"
	}
	return "neon"
}

// TestE2E runs the mesh as separate services, each a shared/server
// instance on loopback: a registry, a quantizer, a router and one inference
// node per kernel cap this CPU runs, found through a real Consul agent
// (skipped without the binary, failing under CI) and through in-process
// discovery.
func TestE2E(t *testing.T) {
	t.Run("consul", func(t *testing.T) {
		agent := consultest.Start(t)
		disc, err := discovery.NewConsul(agent.Addr)
		if err != nil {
			t.Fatal(err)
		}
		runE2E(t, disc)
	})
	t.Run("memory", func(t *testing.T) {
		disc := discovery.NewMemory()
		defer disc.Close()
		runE2E(t, disc)
	})
}

func runE2E(t *testing.T, disc discovery.Registry) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	base := Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(), Discovery: disc,
		CheckInterval: 2 * time.Second, PublishInterval: 100 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		Version: "e2e", MemoryBudget: 256 << 20,
	}
	with := func(name string, k kernels.Path) Config {
		c := base
		c.NodeName, c.Kernel = name, k
		return c
	}
	reg := serve(t, Registry, with("registry", ""))
	quant := serve(t, Quantizer, with("quantizer", ""))
	nodes := map[string]*running{}
	var names []string
	for _, k := range []kernels.Path{kernels.Generic, kernels.AVX2, kernels.AVX512} {
		if !slices.Contains(kernels.Supported(), k) {
			t.Logf("this CPU lacks %s: no node capped at it", k)
			continue
		}
		name := "node-" + string(k)
		c := with(name, k)
		if k == kernels.AVX2 {
			// This node crashes in "crash a node": it never deregisters,
			// and its streams are cut at once.
			c.Discovery, c.ShutdownTimeout = noDeregister{disc}, time.Millisecond
		}
		nodes[name], names = serve(t, Inference, c), append(names, name)
	}
	slices.Sort(names)
	rt := serve(t, Router, with("router", ""))
	rc := dialSDK(t, rt.Addr().String())
	nodeNames := func() ([]string, error) {
		ns, err := rc.Inference().ListNodes(ctx, "")
		var got []string
		for _, n := range ns {
			got = append(got, n.GetName())
		}
		slices.Sort(got)
		return got, err
	}
	eventually(t, 20*time.Second, "router sees every node", func() error {
		got, err := nodeNames()
		if err == nil && !slices.Equal(got, names) {
			err = fmt.Errorf("got nodes %v, want %v", got, names)
		}
		return err
	})

	// Push a full-precision checkpoint and quantize it to TQ2_0, the
	// quantizer reaching the registry found in Consul.
	ckpt := filepath.Join(t.TempDir(), "wide")
	writeWideCheckpoint(t, ckpt)
	regc := dialSDK(t, reg.Addr().String())
	pushed, err := regc.Registry().Push(ctx, "wide-f32", ckpt, nil)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	qc := dialSDK(t, quant.Addr().String())
	job, err := qc.Quantizer().CreateJob(ctx, &quantizerv1.CreateJobRequest{
		Source: &quantizerv1.Source{Source: &quantizerv1.Source_Model{Model: pushed.Ref}},
		Target: modelv1.QuantType_QUANT_TYPE_TQ2_0,
		Output: &quantizerv1.Output{Name: "wide", Aliases: []string{"prod"}},
		Calibration: &quantizerv1.Calibration{
			TextSource: &quantizerv1.Calibration_Text{Text: "Light is refracted by the prism into colours."},
			MaxTokens:  24, ContextLength: 24,
		},
	})
	if err != nil {
		t.Fatalf("create job: %v", err)
	}
	final, err := qc.Quantizer().Watch(ctx, job.GetJobId(), nil)
	if err != nil {
		t.Fatalf("quantize: %v", err)
	}
	if got := final.GetResult().Text(); got != "wide@1" {
		t.Fatalf("got result %q, want wide@1", got)
	}
	v, err := regc.Registry().Resolve(ctx, "wide:prod")
	if err != nil {
		t.Fatal(err)
	}
	if v.GetFormat() != modelv1.ModelFormat_MODEL_FORMAT_GGUF || v.GetQuantType() != modelv1.QuantType_QUANT_TYPE_TQ2_0 ||
		v.GetLineage().GetParent().Text() != pushed.Ref {
		t.Fatalf("got wide:prod %v %v from %v, want GGUF TQ2_0 from %s", v.GetFormat(), v.GetQuantType(), v.GetLineage().GetParent(), pushed.Ref)
	}

	t.Run("gRPC", func(t *testing.T) {
		o := generate(ctx, rc, &inferencev1.GenerateRequest{Model: "wide:prod", Prompt: "Light is", MaxTokens: 4})
		if o.err != nil || o.node == "" || o.kernel == "" {
			t.Fatalf("got node %q kernel %q error %v, want a node and kernel", o.node, o.kernel, o.err)
		}
		// A node served alone exports its own metrics, unlabelled.
		if n := nodes[o.node]; n != nil {
			scrapeMetrics(t, n.HTTPAddr().String(), `bitnet:request_success_total{finished_reason=`, `bitnet:generation_tokens_total{model_name="wide@1"}`,
				`bitnet_inference_loaded_models 1`)
		}
	})
	if _, ok := nodes["node-avx512"]; ok {
		t.Run("require avx512", func(t *testing.T) {
			for range 3 {
				o := generate(ctx, rc, &inferencev1.GenerateRequest{Model: "wide", Prompt: "Light", MaxTokens: 2, Require: []string{"avx512"}})
				if o.err != nil || o.node != "node-avx512" || o.kernel != "avx512" {
					t.Fatalf("got node %q kernel %q error %v, want node-avx512 on avx512", o.node, o.kernel, o.err)
				}
			}
		})
	}
	t.Run("REST", func(t *testing.T) { testREST(t, "http://"+rt.HTTPAddr().String()) })

	// Load the model everywhere, so that only load and kernel tier differ.
	for _, n := range names {
		if _, err := rc.Inference().RPC().LoadModel(ctx, &inferencev1.LoadModelRequest{Model: "wide@1", Node: n}); err != nil {
			t.Fatalf("load on %s: %v", n, err)
		}
	}
	eventually(t, 5*time.Second, "router sees the model loaded", func() error {
		ns, err := rc.Inference().ListNodes(ctx, "")
		for _, n := range ns {
			if len(n.GetLoaded()) == 0 {
				return fmt.Errorf("node %s advertises no loaded model", n.GetName())
			}
		}
		return err
	})
	if len(names) > 1 {
		t.Run("spread", func(t *testing.T) {
			counts := map[string]int{}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for range 12 {
				wg.Go(func() {
					o := generate(ctx, rc, &inferencev1.GenerateRequest{Model: "wide", Prompt: "Light is", MaxTokens: 32})
					mu.Lock()
					defer mu.Unlock()
					if o.err != nil {
						t.Errorf("generate: %v", o.err)
					}
					counts[o.node]++
				})
			}
			wg.Wait()
			t.Logf("12 concurrent requests by node: %v", counts)
			if len(counts) < 2 {
				t.Errorf("got 12 concurrent requests served by %v, want at least 2 nodes", counts)
			}
		})
		victim := "node-avx512"
		if nodes[victim] == nil {
			victim = names[0]
		}
		t.Run("kill a node", func(t *testing.T) { testKill(ctx, t, rc, nodes, victim, nodeNames) })
		if nodes["node-avx2"] != nil && len(names) >= 3 {
			t.Run("crash a node", func(t *testing.T) { testKill(ctx, t, rc, nodes, "node-avx2", nodeNames) })
		}
	}
	t.Run("bad input", func(t *testing.T) { testBadInput(ctx, t, rc, regc, "http://"+rt.HTTPAddr().String()) })

	// Restart the registry on the same directory: every blob is still
	// there, and the nodes find the new instance through Consul.
	if err := reg.stop(); err != nil {
		t.Fatal(err)
	}
	reg2 := serve(t, Registry, with("registry", ""))
	regc2 := dialSDK(t, reg2.Addr().String())
	models, err := regc2.Registry().List(ctx, "")
	if err != nil || len(models) != 2 {
		t.Fatalf("got %d models (%v) after restart, want 2", len(models), err)
	}
	for _, m := range models {
		vs, err := regc2.Registry().Versions(ctx, m.GetName())
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			if _, err := regc2.Registry().Pull(ctx, v.GetRef().Text(), t.TempDir(), nil); err != nil {
				t.Errorf("pull %s after restart: %v", v.GetRef().Text(), err)
			}
		}
	}
	if _, err := regc2.Registry().Push(ctx, "tiny", "../../testdata/models/tiny-gqa-tied-f32", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a node fetches from the restarted registry", func() error {
		return generate(ctx, rc, &inferencev1.GenerateRequest{Model: "tiny", Prompt: "Light", MaxTokens: 2}).err
	})
}

func testREST(t *testing.T, base string) {
	resp, err := http.Post(base+"/v1/generate", "application/json",
		strings.NewReader(`{"model": "wide:prod", "prompt": "Light is", "max_tokens": 3, "temperature": 0}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got status %d, want 200", resp.StatusCode)
	}
	var lines []map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) == 0 {
		t.Fatal("got no NDJSON lines")
	}
	for i, l := range lines {
		if _, ok := l["text"].(string); !ok {
			t.Errorf("line %d: got %v, want a text field on every line", i, l)
		}
	}
	last := lines[len(lines)-1]
	if last["node"] == nil || last["kernel"] == nil || last["finish_reason"] == nil || last["usage"] == nil {
		t.Errorf("got last line %v, want node, kernel, finish_reason and usage", last)
	}
}

// noDeregister is a registry whose instances stay registered when their
// process ends, as after a crash: only the health check removes them.
type noDeregister struct{ discovery.Registry }

func (noDeregister) Deregister(context.Context, string) error { return nil }

// testKill stops a node (as SIGTERM does) under steady traffic: no request
// that had not started streaming fails, and the router stops choosing the
// node within 5 s.
func testKill(ctx context.Context, t *testing.T, rc *sdk.Client, nodes map[string]*running, victim string, nodeNames func() ([]string, error)) {
	stop := make(chan struct{})
	var mu sync.Mutex
	var outs []outcome
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				o := generate(ctx, rc, &inferencev1.GenerateRequest{Model: "wide", Prompt: "Light is", MaxTokens: 16})
				mu.Lock()
				outs = append(outs, o)
				mu.Unlock()
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	killed := time.Now()
	if err := nodes[victim].stop(); err != nil {
		t.Errorf("stop %s: %v", victim, err)
	}
	eventually(t, 5*time.Second-time.Since(killed), "router drops "+victim, func() error {
		got, err := nodeNames()
		if err == nil && slices.Contains(got, victim) {
			err = fmt.Errorf("router still lists %s in %v", victim, got)
		}
		return err
	})
	dropped := time.Now()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	for range 5 {
		outs = append(outs, generate(ctx, rc, &inferencev1.GenerateRequest{Model: "wide", Prompt: "Light", MaxTokens: 2}))
	}
	byNode := map[string]int{}
	for _, o := range outs {
		byNode[o.node]++
	}
	t.Logf("%d requests by node %v; router dropped %s %v after its stop began", len(outs), byNode, victim, dropped.Sub(killed))
	for _, o := range outs {
		if o.err != nil && !o.started {
			t.Errorf("a request that had not started streaming failed: %v", o.err)
		}
	}
	for _, o := range outs[len(outs)-5:] {
		if o.node == victim {
			t.Errorf("a request after the drop went to %s", victim)
		}
	}
}

func testBadInput(ctx context.Context, t *testing.T, rc, regc *sdk.Client, base string) {
	for _, tc := range []struct {
		name string
		req  *inferencev1.GenerateRequest
		want codes.Code
	}{
		{"unknown model", &inferencev1.GenerateRequest{Model: "no-such-model", Prompt: "x", MaxTokens: 1}, codes.NotFound},
		{"bad alias", &inferencev1.GenerateRequest{Model: "wide:Bad Alias!", Prompt: "x", MaxTokens: 1}, codes.InvalidArgument},
		{"unmet constraint", &inferencev1.GenerateRequest{Model: "wide", Prompt: "x", MaxTokens: 1, Require: []string{unmetFeature()}}, codes.FailedPrecondition},
	} {
		o := generate(ctx, rc, tc.req)
		if got := status.Code(o.err); got != tc.want {
			t.Errorf("%s: got %v (%v), want %v", tc.name, got, o.err, tc.want)
		}
	}

	// An upload whose bytes do not hash to the announced sha256.
	sum := sha256.Sum256([]byte("hello"))
	up, err := regc.Registry().RPC().CreateUpload(ctx, &registryv1.CreateUploadRequest{Sha256: hex.EncodeToString(sum[:]), SizeBytes: 5})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := regc.Registry().RPC().UploadBlob(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&registryv1.UploadBlobRequest{Content: &registryv1.UploadBlobRequest_Header{Header: &registryv1.UploadBlobHeader{UploadId: up.GetUpload().GetUploadId()}}})
	_ = stream.Send(&registryv1.UploadBlobRequest{Content: &registryv1.UploadBlobRequest_Chunk{Chunk: []byte("jello")}})
	if _, err := stream.CloseAndRecv(); status.Code(err) != codes.InvalidArgument {
		t.Errorf("corrupt upload: got %v (%v), want InvalidArgument (as the proto documents)", status.Code(err), err)
	}

	resp, err := http.Post(base+"/v1/generate", "application/json", strings.NewReader(`{"model": "wide",`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed JSON: got status %d, want 400", resp.StatusCode)
	}
}
