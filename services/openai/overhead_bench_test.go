package openai_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/services/inference"
	"github.com/bitnet-mesh/bitnet-mesh/services/openai"
	"github.com/bitnet-mesh/bitnet-mesh/services/router"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
)

// benchSchema keeps a json_schema generation going: one free string.
const benchSchema = `{"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}`

// BenchmarkOpenAIOverhead compares, on the model BITNET_BENCH_GGUF (the
// 2B4T shape from tools/randmodel), a chat through the OpenAI front
// (streamed /v1/chat/completions over the router) with the native Generate
// through the router, and the native Generate with a json_schema
// response_format (constrained decoding) against the plain one: time to
// first token (one-token generations, many paired samples) and tokens/s of
// BITNET_BENCH_GEN (default 32) greedy tokens on one stream. Arms run back
// to back in a rotating order and the overheads are medians of per-pair
// differences (the machine is shared):
//
//	go run ./tools/randmodel -out /tmp/bitnet-2b.gguf
//	BITNET_BENCH_GGUF=/tmp/bitnet-2b.gguf go test -run X -bench OpenAIOverhead -benchtime 3x ./services/openai/
func BenchmarkOpenAIOverhead(b *testing.B) {
	path := os.Getenv("BITNET_BENCH_GGUF")
	if path == "" {
		b.Skip("set BITNET_BENCH_GGUF to a .gguf model")
	}
	gen := 32
	if v := os.Getenv("BITNET_BENCH_GEN"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("BITNET_BENCH_GEN=%q: want a token count >= 1", v)
		}
		gen = n
	}
	name := strings.TrimSuffix(filepath.Base(path), ".gguf")
	viaRouter, conn := benchRouter(b, filepath.Dir(path))
	mux := http.NewServeMux()
	openai.New(inferencev1.NewInferenceServiceClient(conn)).Register(mux)
	hs := httptest.NewServer(mux)
	b.Cleanup(hs.Close)

	msgs := []*inferencev1.ChatMessage{{Role: inferencev1.Role_ROLE_USER, Content: "What is the light of the sun?"}}
	native := func(n int, schema bool) func(context.Context) (time.Duration, int, error) {
		req := &inferencev1.GenerateRequest{Model: name, Messages: msgs, MaxTokens: uint32(n), Temperature: proto.Float32(0)}
		if schema {
			req.ResponseFormat = &inferencev1.ResponseFormat{Type: inferencev1.ResponseFormatType_RESPONSE_FORMAT_TYPE_JSON_SCHEMA, JsonSchema: benchSchema}
		}
		return func(ctx context.Context) (time.Duration, int, error) { return nativeRun(ctx, viaRouter, req) }
	}
	viaOpenAI := func(n int) func(context.Context) (time.Duration, int, error) {
		body := fmt.Sprintf(`{"model": %q, "messages": [{"role": "user", "content": "What is the light of the sun?"}], "max_tokens": %d, "temperature": 0, "stream": true, "stream_options": {"include_usage": true}}`, name, n)
		return func(ctx context.Context) (time.Duration, int, error) {
			return sseRun(ctx, hs.URL+"/v1/chat/completions", body)
		}
	}
	type arm struct {
		name string
		run  func(context.Context) (time.Duration, int, error)
	}
	warm := []arm{{"native", native(2, false)}, {"openai", viaOpenAI(2)}, {"json", native(2, true)}}
	for _, a := range warm { // the node loads the model; the vocabulary trie is built
		if _, _, err := a.run(b.Context()); err != nil {
			b.Fatalf("%s: %v", a.name, err)
		}
	}
	b.Run("ttft", func(b *testing.B) {
		arms := []arm{{"native", native(1, false)}, {"openai", viaOpenAI(1)}}
		ms := make([][]float64, len(arms))
		for i := 0; b.Loop(); i++ {
			for k := range arms {
				ai := (i + k) % len(arms)
				d, _, err := arms[ai].run(b.Context())
				if err != nil {
					b.Fatal(err)
				}
				ms[ai] = append(ms[ai], float64(d.Microseconds())/1000)
			}
		}
		d := make([]float64, len(ms[0]))
		for i := range d {
			d[i] = ms[1][i] - ms[0][i]
		}
		b.ReportMetric(benchMedian(ms[0]), "native/p50-ttft-ms")
		b.ReportMetric(benchMedian(ms[1]), "openai/p50-ttft-ms")
		b.ReportMetric(benchMedian(d), "openai-vs-native-ms")
		b.ReportMetric(100*benchMedian(d)/benchMedian(ms[0]), "openai-vs-native-%")
	})
	b.Run("generate", func(b *testing.B) {
		arms := []arm{{"native", native(gen, false)}, {"openai", viaOpenAI(gen)}, {"json", native(gen, true)}}
		tps := make([][]float64, len(arms))
		for i := 0; b.Loop(); i++ {
			for k := range arms {
				ai := (i + k) % len(arms)
				start := time.Now()
				ttft, n, err := arms[ai].run(b.Context())
				if err != nil {
					b.Fatal(err)
				}
				// Decode rate: tokens after the first over the time after it.
				if n > 1 {
					tps[ai] = append(tps[ai], float64(n-1)/(time.Since(start)-ttft).Seconds())
				}
			}
		}
		ratio := func(a int) float64 {
			r := make([]float64, min(len(tps[a]), len(tps[0])))
			for i := range r {
				r[i] = tps[a][i] / tps[0][i]
			}
			return benchMedian(r)
		}
		for ai, a := range arms {
			b.ReportMetric(benchMedian(tps[ai]), a.name+"/tok/s")
		}
		b.ReportMetric(100*(1-ratio(1)), "openai-loss-%")
		// json_schema's cost per token as a share of a decode step:
		// per-token time with the mask over the plain per-token time, - 1.
		b.ReportMetric(100*(1/ratio(2)-1), "json-cost-per-token-%")
	})
}

// nativeRun generates with c: the time to the first token and the tokens
// generated.
func nativeRun(ctx context.Context, c inferencev1.InferenceServiceClient, req *inferencev1.GenerateRequest) (time.Duration, int, error) {
	start := time.Now()
	st, err := c.Generate(ctx, req)
	if err != nil {
		return 0, 0, err
	}
	var ttft time.Duration
	for {
		msg, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return 0, 0, errors.New("stream ended without a final message")
		}
		if err != nil {
			return 0, 0, err
		}
		if ttft == 0 && len(msg.GetTokenIds()) > 0 {
			ttft = time.Since(start)
		}
		if msg.GetFinishReason() != inferencev1.FinishReason_FINISH_REASON_UNSPECIFIED {
			return ttft, int(msg.GetUsage().GetCompletionTokens()), nil
		}
	}
}

// sseRun posts a streamed chat and reads it to [DONE]: the time to the
// first content chunk and the completion tokens of the usage chunk.
func sseRun(ctx context.Context, url, body string) (time.Duration, int, error) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(resp.Body)
		return 0, 0, fmt.Errorf("status %d: %s", resp.StatusCode, data)
	}
	var ttft time.Duration
	n := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			return ttft, n, nil
		}
		var ch struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
			Usage *struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			return 0, 0, err
		}
		if ttft == 0 && len(ch.Choices) > 0 && ch.Choices[0].Delta.Content != "" {
			ttft = time.Since(start)
		}
		if ch.Usage != nil {
			n = ch.Usage.CompletionTokens
		}
	}
	return 0, 0, errors.New("stream ended without [DONE]")
}

func benchMedian(x []float64) float64 {
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

// benchRouter starts an inference node serving dir's models and a router
// over it; it returns the router's client and a connection to it.
func benchRouter(b *testing.B, dir string) (inferencev1.InferenceServiceClient, *grpc.ClientConn) {
	reg := discovery.NewMemory()
	b.Cleanup(func() { _ = reg.Close() })
	s, err := inference.NewServer(inference.DirFetcher{Root: dir}, inference.WithNodeName("bench"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	nodeAddr := benchServe(b, func(g grpc.ServiceRegistrar) { s.Register(g); healthpb.RegisterHealthServer(g, health.NewServer()) })
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
	conn, err := grpc.NewClient(benchServe(b, func(g grpc.ServiceRegistrar) { r.Register(g) }), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	c := inferencev1.NewInferenceServiceClient(conn)
	for i := 0; ; i++ {
		resp, err := c.ListNodes(b.Context(), &inferencev1.ListNodesRequest{})
		if err == nil && len(resp.GetNodes()) == 1 && resp.GetNodes()[0].GetHealthy() {
			return c, conn
		}
		if i > 500 {
			b.Fatalf("router sees %v (err %v), want the node", resp.GetNodes(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func benchServe(b *testing.B, register func(grpc.ServiceRegistrar)) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	g := grpc.NewServer()
	register(g)
	go func() { _ = g.Serve(lis) }()
	b.Cleanup(g.Stop)
	return lis.Addr().String()
}
