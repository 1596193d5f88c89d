package mesh

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	trainerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/trainer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery/consultest"
)

// TestUp runs the one-process mesh with in-process discovery and with
// Consul, pushes a model through the public endpoint and generates with it.
func TestUp(t *testing.T) {
	for _, tc := range []struct {
		name string
		disc func(t *testing.T) discovery.Registry
	}{
		{"memory", func(*testing.T) discovery.Registry { return nil }},
		{"consul", func(t *testing.T) discovery.Registry {
			a := consultest.Start(t)
			c, err := discovery.NewConsul(a.Addr)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			disc := tc.disc(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ready := make(chan Endpoints, 1)
			done := make(chan error, 1)
			cfg := Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(), Discovery: disc, Threads: 1}
			go func() { done <- Up(ctx, cfg, func(e Endpoints) { ready <- e }) }()
			var e Endpoints
			select {
			case e = <-ready:
			case err := <-done:
				t.Fatalf("Up ended early: %v", err)
			case <-time.After(20 * time.Second):
				t.Fatal("not ready within 20 s")
			}
			// An empty mesh lists no models as an empty list, not {}.
			for _, path := range []string{"/v1/mesh/models", "/v1/registry/models"} {
				if got := getBody(t, "http://"+e.HTTP.String()+path); got != `{"models":[]}` {
					t.Errorf("GET %s on an empty mesh: got %s, want {\"models\":[]}", path, got)
				}
			}
			if got := getBody(t, "http://"+e.HTTP.String()+"/v1/models"); got != `{"object":"list","data":[]}` {
				t.Errorf("OpenAI GET /v1/models on an empty mesh: got %s", got)
			}
			c := dialSDK(t, e.GRPC.String())
			if _, err := c.Registry().Push(ctx, "tiny", "../../testdata/models/tiny-gqa-tied-f32", nil); err != nil {
				t.Fatal(err)
			}
			// The OpenAI API on the same port: the registry's models, and a
			// chat routed to the node.
			if got := getBody(t, "http://"+e.HTTP.String()+"/v1/models"); !strings.Contains(got, `"id":"tiny"`) || !strings.Contains(got, `"id":"tiny@1"`) {
				t.Errorf("OpenAI GET /v1/models: got %s, want tiny and tiny@1", got)
			}
			resp, err := http.Post("http://"+e.HTTP.String()+"/v1/chat/completions", "application/json",
				strings.NewReader(`{"model": "tiny", "messages": [{"role": "user", "content": "Light"}], "max_tokens": 2, "temperature": 0}`))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("x-bitnet-node") != "local" || !strings.Contains(string(body), `"chat.completion"`) {
				t.Errorf("OpenAI chat through up: %d %v %s", resp.StatusCode, resp.Header, body)
			}
			final, err := c.Inference().GenerateText(ctx, &inferencev1.GenerateRequest{Model: "tiny@1", Prompt: "Light", MaxTokens: 2}, nil)
			if err != nil || final.GetNode() != "local" {
				t.Fatalf("generate: got node %q, %v; want node local", final.GetNode(), err)
			}
			// One /metrics has every service's series, the node's labelled.
			scrapeMetrics(t, e.HTTP.String(),
				`bitnet:generation_tokens_total{model_name="tiny@1",node="local"} 4`,
				`bitnet_inference_loaded_models{node="local"} 1`,
				`grpc_server_handled_total{grpc_code="OK",grpc_method="Generate",grpc_service="bitnet.inference.v1.InferenceService",grpc_type="server_stream",node="local"} 2`,
				`grpc_server_handled_total{grpc_code="OK",grpc_method="Generate",grpc_service="bitnet.inference.v1.InferenceService",grpc_type="server_stream"} 2`,
				`bitnet_router_routed_total{method="Generate",node="local"} 2`,
			)
			// The trainer is on the same front door.
			tc := trainerv1.NewTrainerServiceClient(dialGRPC(t, e.GRPC.String()))
			if _, err := tc.ListJobs(ctx, &trainerv1.ListJobsRequest{}); err != nil {
				t.Fatalf("trainer ListJobs through up: %v", err)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("got %v after cancel, want a clean shutdown", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("Up did not stop within 20 s")
			}
			if disc != nil {
				for _, svc := range []string{"bitnet-registry", "bitnet-trainer", "bitnet-inference", "bitnet-router"} {
					if left, err := disc.Instances(context.Background(), svc); err != nil || len(left) != 0 {
						t.Errorf("%s after shutdown: got %v, %v; want deregistered", svc, left, err)
					}
				}
			}
		})
	}
}

func dialGRPC(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// scrapeMetrics GETs http://addr/metrics until every want starts a line of it
// (a node's RPC is counted when its handler returns, which may be just after
// the client saw the last message) and checks each TYPE line is there once.
func scrapeMetrics(t *testing.T, addr string, want ...string) {
	t.Helper()
	var body []byte
	eventually(t, 5*time.Second, "series in /metrics", func() error {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if body, err = io.ReadAll(resp.Body); err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /metrics: got %d, %v; want 200", resp.StatusCode, err)
		}
		lines := strings.Split(string(body), "\n")
		types := map[string]bool{}
		for _, l := range lines {
			if strings.HasPrefix(l, "# TYPE ") && types[l] {
				return fmt.Errorf("got %q twice, want each family once", l)
			}
			types[l] = true
		}
		for _, w := range want {
			if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, w) }) {
				return fmt.Errorf("got\n%s\nwant a line %q", body, w)
			}
		}
		return nil
	})
}

// getBody GETs url and returns its body, failing unless the status is 200.
func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: got %d %s, %v; want 200", url, resp.StatusCode, body, err)
	}
	return string(bytes.TrimSpace(body))
}
