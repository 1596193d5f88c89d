package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bitnet-mesh/bitnet-mesh/cmd/bitnet/internal/config"
	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
)

// lineWriter collects output and signals when a line matches.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	re    *regexp.Regexp
	match chan []string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if m := w.re.FindStringSubmatch(w.buf.String()); m != nil && w.match != nil {
		w.match <- m
		w.match = nil
	}
	return len(p), nil
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// startCommand runs the CLI in a goroutine until the test ends and returns
// the submatches of the first output that matches re.
func startCommand(t *testing.T, re string, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	matched := make(chan []string, 1)
	out := &lineWriter{re: regexp.MustCompile(re), match: matched}
	var stderr lineWriter
	stderr.re = regexp.MustCompile(`^\b$`)
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, out, &stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: got %v after cancel, want a clean shutdown", args[0], err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop within 30 s", args[0])
		}
	})
	select {
	case m := <-matched:
		return m
	case err := <-done:
		t.Fatalf("%s ended early: %v\nstdout: %s\nstderr: %s", args[0], err, out, &stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no output matching %q within 30 s\nstdout: %s\nstderr: %s", args[0], re, out, &stderr)
	}
	return nil
}

func TestUp(t *testing.T) {
	m := startCommand(t, `ready: gRPC (\S+), REST http://(\S+),`,
		"up", "--data", t.TempDir(), "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--log-level", "warn", "--threads", "1")
	grpcAddr, httpAddr := m[1], m[2]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := sdk.Dial(ctx, grpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Registry().Push(ctx, "tiny", "../../testdata/models/tiny-gqa-tied-f32", nil)
	if err != nil || res.Ref != "tiny@1" {
		t.Fatalf("push: got %v, %v; want tiny@1", res, err)
	}
	final, err := c.Inference().GenerateText(ctx, &inferencev1.GenerateRequest{Model: "tiny", Prompt: "Light is", MaxTokens: 3}, nil)
	if err != nil || final.GetNode() != "local" || final.GetUsage().GetCompletionTokens() != 3 {
		t.Fatalf("generate: got node %q, usage %v, %v; want 3 tokens from node local", final.GetNode(), final.GetUsage(), err)
	}
	// Errors read as the user wrote the request: no repeated prefixes, no
	// status code text inside the message, no protojson internals.
	_, err = c.Inference().GenerateText(ctx, &inferencev1.GenerateRequest{Model: "tiny", Prompt: "x", TopP: ptrTo(float32(7))}, nil)
	if msg := status.Convert(err).Message(); status.Code(err) != codes.InvalidArgument || strings.Count(msg, "sampling:") != 1 || !strings.Contains(msg, "top-p 7") {
		t.Errorf("top_p 7: got %v, want INVALID_ARGUMENT saying sampling: once", err)
	}
	for _, ref := range []string{"nope@3", "tiny@5", "tiny:prod"} {
		_, err = c.Inference().GenerateText(ctx, &inferencev1.GenerateRequest{Model: ref, Prompt: "x"}, nil)
		msg := status.Convert(err).Message()
		if status.Code(err) != codes.NotFound || strings.Count(msg, "resolve") > 1 || strings.Contains(msg, "NotFound") || strings.Count(msg, ref) != 1 {
			t.Errorf("%s: got %v, want NOT_FOUND naming it once, without repeated prefixes", ref, err)
		}
	}
	for _, tc := range []struct{ body, want string }{
		{`{"model": "tiny", "prompt": "x", "max_tokens": -1}`, "invalid value for max_tokens: -1 (want an integer from 0 to 4294967295)"},
		{"{\"model\": \"tiny\", \"prompt\": \"\xff\"}", "invalid UTF-8"},
	} {
		resp, err := http.Post("http://"+httpAddr+"/v1/generate", "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), tc.want) || strings.Contains(string(body), "proto") {
			t.Errorf("POST /v1/generate %s: got %d %s, want 400 with %q", tc.body, resp.StatusCode, body, tc.want)
		}
	}
	// One REST mux serves the router, the registry and the quantizer.
	for _, path := range []string{"/v1/mesh/models", "/v1/registry/models", "/v1/quantizer/jobs", "/v1/nodes", "/openapi/bitnet.swagger.json", "/readyz"} {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: got %d %s, want 200", path, resp.StatusCode, body)
		}
		if path == "/v1/registry/models" && !strings.Contains(string(body), `"tiny"`) {
			t.Errorf("GET %s: got %s, want the tiny model", path, body)
		}
	}
}

func TestServe(t *testing.T) {
	m := startCommand(t, `registry serving gRPC on (\S+)\n`,
		"serve", "registry", "--data", t.TempDir(), "--grpc", "127.0.0.1:0", "--http", "-", "--log-level", "warn")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := sdk.Dial(ctx, m[1])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Registry().Push(ctx, "tiny", "../../testdata/models/tiny-gqa-tied-f32", nil); err != nil {
		t.Fatalf("push to a lone registry: %v", err)
	}
}

func TestServeBadInput(t *testing.T) {
	t.Setenv("BITNET_THREADS", "")
	t.Setenv("BITNET_LOG_JSON", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve"}, "want one service name"},
		{[]string{"serve", "mailer"}, "unknown service"},
		{[]string{"serve", "router", "--threads", "x"}, "--threads"},
		{[]string{"serve", "inference", "--kernel", "sse9"}, "--kernel"},
		{[]string{"serve", "router", "--memory-budget", "-5"}, "--memory-budget"},
		{[]string{"serve", "inference", "--kv-cache", "q4"}, "--kv-cache"},
		{[]string{"serve", "router", "--log-level", "loud"}, "level"},
		{[]string{"serve", "inference", "--consul", "", "--registry", ""}, "cannot find the registry"},
		{[]string{"up", "extra"}, "unexpected arguments"},
		{[]string{"up", "--log-json=maybe"}, "log-json"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), tc.args, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
	// A port in use: the error says how to pick others.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, args := range [][]string{
		{"up", "--data", t.TempDir(), "--grpc", taken.Addr().String(), "--http", "-"},
		{"serve", "registry", "--data", t.TempDir(), "--grpc", "127.0.0.1:0", "--http", taken.Addr().String()},
	} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "address already in use (pick free ports with --grpc and --http") {
			t.Errorf("%q: got %v, want the port hint", args, err)
		}
	}
	for _, env := range []string{"BITNET_LOG_JSON", "BITNET_HUGE_PAGES"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, "maybe")
			if err := run(context.Background(), []string{"serve", "router"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), env) {
				t.Errorf("bad %s: got error %v, want one naming it", env, err)
			}
		})
	}
}

// TestMeshFlagsEnv checks that the environment supplies the settings of
// up and serve (aliases included, except CONSUL_HTTP_ADDR for up) and that
// flags win.
func TestMeshFlagsEnv(t *testing.T) {
	env := config.MapLookup(map[string]string{
		"BITNET_GRPC_ADDR":  "127.0.0.1:7000",
		"BITNET_THREADS":    "3",
		"BITNET_LOG_JSON":   "true",
		"CONSUL_HTTP_ADDR":  "127.0.0.1:8500",
		"POD_IP":            "10.0.0.7",
		"BITNET_HUGE_PAGES": "false",
		"BITNET_DRAIN":      "5s",
	})
	for _, tc := range []struct {
		cmd        string
		args       []string
		wantGRPC   string
		wantConsul string
	}{
		{"serve", nil, "127.0.0.1:7000", "127.0.0.1:8500"},
		{"serve", []string{"--grpc", ":9000", "--consul", ""}, ":9000", ""},
		{"up", nil, "127.0.0.1:7000", ""}, // up uses in-process discovery unless --consul
	} {
		settings := config.Server
		if tc.cmd == "up" {
			settings = upSettings()
		}
		c := &cobra.Command{Use: tc.cmd}
		set := config.Bind(c, settings...)
		if err := c.ParseFlags(tc.args); err != nil {
			t.Fatal(err)
		}
		v, err := set.Resolve(env)
		if err != nil {
			t.Fatal(err)
		}
		grpc, consul, threads := config.GRPCAddr.Get(v), config.Consul.Get(v), config.Threads.Get(v)
		json, adv, huge, drain := config.LogJSON.Get(v), config.Advertise.Get(v), config.HugePages.Get(v), config.Drain.Get(v)
		if grpc != tc.wantGRPC || consul != tc.wantConsul || threads != 3 || !json || adv != "10.0.0.7" || huge || drain != 5*time.Second {
			t.Errorf("%s %v: got grpc %q consul %q threads %d json %v advertise %q huge pages %v drain %v; want %q %q 3 true 10.0.0.7 false 5s",
				tc.cmd, tc.args, grpc, consul, threads, json, adv, huge, drain, tc.wantGRPC, tc.wantConsul)
		}
	}
}

// TestMeshConfigServing checks that the drain, memory and scheduler
// settings reach mesh.Config from flags and from the environment.
func TestMeshConfigServing(t *testing.T) {
	env := config.MapLookup(map[string]string{
		"BITNET_DRAIN": "10s", "BITNET_MEMORY_BUDGET": "6GiB", "BITNET_MAX_BATCH": "8",
		"BITNET_MAX_QUEUE": "32", "BITNET_PREFILL_CHUNK": "16", "BITNET_JOB_MEMORY_BUDGET": "1073741824",
		"GOMEMLIMIT": "1GiB", // left to the runtime: meshConfig sets no limit
	})
	for _, tc := range []struct {
		args                []string
		batch, queue, chunk int
		drain               time.Duration
		budget, jobBudget   int64
	}{
		{nil, 8, 32, 16, 10 * time.Second, 6 << 30, 1 << 30},
		{[]string{"--max-batch", "4", "--max-queue", "2", "--prefill-chunk", "128", "--drain", "3s", "--memory-budget", "2GiB"},
			4, 2, 128, 3 * time.Second, 2 << 30, 1 << 30},
	} {
		c := &cobra.Command{Use: "serve"}
		set := config.Bind(c, config.Server...)
		if err := c.ParseFlags(tc.args); err != nil {
			t.Fatal(err)
		}
		v, err := set.Resolve(env)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := meshConfig(v, env)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MaxBatch != tc.batch || cfg.MaxQueue != tc.queue || cfg.PrefillChunk != tc.chunk || cfg.DrainTimeout != tc.drain ||
			cfg.MemoryBudget != tc.budget || cfg.JobMemoryBudget != tc.jobBudget {
			t.Errorf("%v: got batch %d queue %d chunk %d drain %v budget %d job budget %d, want %d %d %d %v %d %d", tc.args,
				cfg.MaxBatch, cfg.MaxQueue, cfg.PrefillChunk, cfg.DrainTimeout, cfg.MemoryBudget, cfg.JobMemoryBudget,
				tc.batch, tc.queue, tc.chunk, tc.drain, tc.budget, tc.jobBudget)
		}
	}
	for _, bad := range []string{"BITNET_MAX_BATCH=0", "BITNET_MAX_QUEUE=-1", "BITNET_PREFILL_CHUNK=0"} {
		k, val, _ := strings.Cut(bad, "=")
		c := &cobra.Command{Use: "serve"}
		set := config.Bind(c, config.Server...)
		if _, err := set.Resolve(config.MapLookup(map[string]string{k: val})); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s: got error %v, want one naming %s", bad, err, k)
		}
	}
}

// TestServerHelpNamesSettings: `bitnet up --help` and `bitnet serve --help`
// name every setting the commands take, with its environment variable: the
// limits of issue 10 (--max-body-bytes and the rest) among them.
func TestServerHelpNamesSettings(t *testing.T) {
	for _, tc := range []struct {
		cmd      string
		settings []config.Any
	}{
		{"up", upSettings()},
		{"serve", config.Server},
	} {
		var out, errb strings.Builder
		if err := runEnv(context.Background(), []string{tc.cmd, "--help"}, config.MapLookup(nil), &out, &errb); err != nil {
			t.Fatal(err)
		}
		help := out.String()
		for _, s := range tc.settings {
			info := s.Info()
			if !strings.Contains(help, "--"+info.Flag+" ") || !strings.Contains(help, "env "+info.Env) {
				t.Errorf("%s --help does not name --%s and %s", tc.cmd, info.Flag, info.Env)
			}
		}
		for _, limit := range []string{"--max-body-bytes", "--max-upload-body-bytes", "--body-read-timeout", "--read-header-timeout",
			"--idle-timeout", "--grpc-max-recv-bytes", "--max-streams", "--grpc-keepalive-min-time", "--max-blob-bytes",
			"--registry-quota", "--registry-min-free", "--job-memory-budget", "--rate-limit", "--tokens-per-minute", "--max-streams-per-key"} {
			if !strings.Contains(help, limit) {
				t.Errorf("%s --help does not name %s", tc.cmd, limit)
			}
		}
	}
}
