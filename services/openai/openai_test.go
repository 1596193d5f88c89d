package openai_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/services/inference"
	"github.com/bitnet-mesh/bitnet-mesh/services/openai"
	"github.com/bitnet-mesh/bitnet-mesh/shared/constrained"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

const tinyDir = "../../testdata/models/tiny-gqa-tied-f32"

// llama3Template is Meta-Llama-3-8B-Instruct's chat template.
func llama3Template(t testing.TB) string {
	b, err := os.ReadFile("../../shared/jinja/testdata/templates/Meta-Llama-3-8B-Instruct.jinja")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// copyModel copies the tiny model to root/name, with a chat template and
// config changes (e.g. a long context and an EOS the model never picks,
// so that a generation runs until it is stopped).
func copyModel(t testing.TB, root, name, template string, cfg map[string]any) {
	t.Helper()
	dst := filepath.Join(root, name)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(tinyDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(tinyDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "config.json" && cfg != nil {
			var c map[string]any
			if err := json.Unmarshal(data, &c); err != nil {
				t.Fatal(err)
			}
			for k, v := range cfg {
				c[k] = v
			}
			data, _ = json.Marshal(c)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tc, _ := json.Marshal(map[string]any{"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "chat_template": template})
	if err := os.WriteFile(filepath.Join(dst, "tokenizer_config.json"), tc, 0o644); err != nil {
		t.Fatal(err)
	}
}

// env is an inference node on loopback gRPC and the OpenAI front over it.
type env struct {
	node   *inference.Server
	client inferencev1.InferenceServiceClient
	url    string
}

func newEnv(t *testing.T, opts ...openai.Option) *env {
	t.Helper()
	root := t.TempDir()
	copyModel(t, root, "tiny", llama3Template(t), nil)
	copyModel(t, root, "long", llama3Template(t), map[string]any{"max_position_embeddings": 32768, "eos_token_id": 598})
	// The synthetic embedding model, when tools/reference made it.
	if _, err := os.Stat(filepath.Join(embedDir, "model.safetensors")); err == nil {
		if err := os.Symlink(mustAbs(t, embedDir), filepath.Join(root, "embed")); err != nil {
			t.Fatal(err)
		}
	}
	node, err := inference.NewServer(inference.DirFetcher{Root: root}, inference.WithNodeName("node-a"), inference.WithKernelCap(kernels.Generic))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	node.Register(gs)
	go gs.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	client := inferencev1.NewInferenceServiceClient(conn)
	mux := http.NewServeMux()
	openai.New(client, opts...).Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() { hs.Close(); conn.Close(); gs.Stop(); node.Close() })
	return &env{node: node, client: client, url: hs.URL}
}

func (e *env) post(t *testing.T, path, body string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(e.url+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

// native generates with the gRPC API: the reference text.
func (e *env) native(t *testing.T, req *inferencev1.GenerateRequest) (string, *inferencev1.GenerateResponse) {
	t.Helper()
	stream, err := e.client.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	var last *inferencev1.GenerateResponse
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return b.String(), last
		}
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(m.GetText())
		last = m
	}
}

type chatResp struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		Delta struct {
			Role    string  `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		Logprobs *struct {
			Content []struct {
				Token       string  `json:"token"`
				Logprob     float64 `json:"logprob"`
				Bytes       []int   `json:"bytes"`
				TopLogprobs []struct {
					Token   string  `json:"token"`
					Logprob float64 `json:"logprob"`
				} `json:"top_logprobs"`
			} `json:"content"`
		} `json:"logprobs"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
	Bitnet *struct {
		Node, Kernel, Model string
	} `json:"bitnet"`
}

// sseEvents reads a text/event-stream body: the data of each event.
func sseEvents(t *testing.T, body io.Reader) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

// TestChatMatchesNative: a greedy chat through the OpenAI front gives the
// text and usage of the native Generate with the same messages, streamed or
// not, with the serving node in the headers and the body.
func TestChatMatchesNative(t *testing.T) {
	e := newEnv(t)
	want, last := e.native(t, &inferencev1.GenerateRequest{Model: "tiny", MaxTokens: 12, Temperature: proto.Float32(0),
		Messages: []*inferencev1.ChatMessage{{Role: inferencev1.Role_ROLE_SYSTEM, Content: "Be brief."}, {Role: inferencev1.Role_ROLE_USER, Content: "Light is"}}})
	body := `{"model": "tiny", "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Light is"}]}], "max_completion_tokens": 12, "temperature": 0}`
	resp, data := e.post(t, "/v1/chat/completions", body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, data)
	}
	var c chatResp
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	if c.Object != "chat.completion" || c.Model != "tiny" || !strings.HasPrefix(c.ID, "chatcmpl-") {
		t.Errorf("envelope: %s", data)
	}
	if got := c.Choices[0].Message.Content; got != want {
		t.Errorf("content %q, want the native %q", got, want)
	}
	if u := c.Usage; u.PromptTokens != int(last.GetUsage().GetPromptTokens()) || u.CompletionTokens != int(last.GetUsage().GetCompletionTokens()) || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("usage %+v, want %v", u, last.GetUsage())
	}
	if resp.Header.Get("x-bitnet-node") != "node-a" || resp.Header.Get("x-bitnet-kernel") != "generic" || c.Bitnet == nil || c.Bitnet.Node != "node-a" || c.Bitnet.Model != "tiny@1" {
		t.Errorf("node headers %v, body extension %+v", resp.Header, c.Bitnet)
	}

	// Streamed: the same text in chunks, a finish chunk, usage, [DONE].
	resp, data = e.post(t, "/v1/chat/completions", strings.Replace(body, `"temperature": 0`, `"temperature": 0, "stream": true, "stream_options": {"include_usage": true}`, 1))
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("stream: status %d, type %q", resp.StatusCode, ct)
	}
	events := sseEvents(t, bytes.NewReader(data))
	if len(events) < 4 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("events %q: want chunks then [DONE]", events)
	}
	var text strings.Builder
	var finish string
	var usage int
	for i, ev := range events[:len(events)-1] {
		var ch chatResp
		if err := json.Unmarshal([]byte(ev), &ch); err != nil {
			t.Fatal(err)
		}
		if ch.Object != "chat.completion.chunk" {
			t.Errorf("chunk %d object %q", i, ch.Object)
		}
		if i == 0 && ch.Choices[0].Delta.Role != "assistant" {
			t.Errorf("first chunk %s: want the assistant role", ev)
		}
		for _, c := range ch.Choices {
			if c.Delta.Content != nil {
				text.WriteString(*c.Delta.Content)
			}
			if c.FinishReason != nil {
				finish = *c.FinishReason
			}
		}
		if ch.Usage != nil {
			usage = ch.Usage.CompletionTokens
		}
	}
	if text.String() != want || finish != "length" || usage != int(last.GetUsage().GetCompletionTokens()) {
		t.Errorf("stream: text %q finish %q usage %d; want %q length %d", text.String(), finish, usage, want, last.GetUsage().GetCompletionTokens())
	}
}

// TestChatStopAndLogprobs: stop sequences end the text before them;
// logprobs come with their top alternatives.
func TestChatStopAndLogprobs(t *testing.T) {
	e := newEnv(t)
	full, _ := e.native(t, &inferencev1.GenerateRequest{Model: "tiny", MaxTokens: 16, Temperature: proto.Float32(0), Messages: []*inferencev1.ChatMessage{{Content: "Light is"}}})
	if len(full) < 6 {
		t.Fatalf("native text %q too short to cut", full)
	}
	stop := full[3:6]
	resp, data := e.post(t, "/v1/chat/completions", `{"model": "tiny", "messages": [{"role": "user", "content": "Light is"}], "max_tokens": 16, "temperature": 0, "stop": [`+mustJSON(stop)+`, "zzzz"], "logprobs": true, "top_logprobs": 3}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, data)
	}
	var c chatResp
	_ = json.Unmarshal(data, &c)
	if got, want := c.Choices[0].Message.Content, full[:strings.Index(full, stop)]; got != want || *c.Choices[0].FinishReason != "stop" {
		t.Errorf("with stop %q: got %q (%s), want %q and stop", stop, got, *c.Choices[0].FinishReason, want)
	}
	lps := c.Choices[0].Logprobs
	if lps == nil || len(lps.Content) == 0 {
		t.Fatalf("no logprobs: %s", data)
	}
	for _, l := range lps.Content {
		if len(l.TopLogprobs) != 3 || l.Logprob > 0 || l.TopLogprobs[0].Logprob < l.TopLogprobs[2].Logprob || len(l.Bytes) == 0 {
			t.Errorf("logprob entry %+v", l)
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestChatStructured: json_schema and json_object outputs parse and
// validate, streamed or not, for sampled output.
func TestChatStructured(t *testing.T) {
	e := newEnv(t)
	schema := `{"type": "object", "properties": {"name": {"type": "string", "maxLength": 12}, "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 3}}, "required": ["name", "tags"], "additionalProperties": false}`
	g, err := constrained.CompileSchema([]byte(schema))
	if err != nil {
		t.Fatal(err)
	}
	for seed := range 6 {
		rf := `{"type": "json_schema", "json_schema": {"name": "thing", "strict": true, "schema": ` + schema + `}}`
		if seed%2 == 1 {
			rf = `{"type": "json_object"}`
		}
		resp, data := e.post(t, "/v1/chat/completions", `{"model": "tiny", "messages": [{"role": "user", "content": "Describe light"}], "max_tokens": 60, "seed": `+mustJSON(seed)+`, "response_format": `+rf+`}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, data)
		}
		var c chatResp
		_ = json.Unmarshal(data, &c)
		out := c.Choices[0].Message.Content
		var v map[string]any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Errorf("seed %d: %q is not a JSON object: %v", seed, out, err)
		}
		if _, ok := g.Prefix([]byte(out)); seed%2 == 0 && !ok {
			t.Errorf("seed %d: %q does not match the schema", seed, out)
		}
	}
}

// TestCompletions: text and token-ID prompts, echo, legacy logprobs.
func TestCompletions(t *testing.T) {
	e := newEnv(t)
	want, _ := e.native(t, &inferencev1.GenerateRequest{Model: "tiny", Prompt: "Light is", MaxTokens: 16, Temperature: proto.Float32(0)})
	type compResp struct {
		Object  string `json:"object"`
		Choices []struct {
			Text     string `json:"text"`
			Logprobs *struct {
				Tokens        []string             `json:"tokens"`
				TokenLogprobs []float64            `json:"token_logprobs"`
				TopLogprobs   []map[string]float64 `json:"top_logprobs"`
				TextOffset    []int                `json:"text_offset"`
			} `json:"logprobs"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
	}
	get := func(body string) compResp {
		resp, data := e.post(t, "/v1/completions", body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", body, resp.StatusCode, data)
		}
		var c compResp
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := get(`{"model": "tiny", "prompt": "Light is", "temperature": 0}`) // max_tokens defaults to 16
	if c.Object != "text_completion" || c.Choices[0].Text != want {
		t.Errorf("got %q, want %q", c.Choices[0].Text, want)
	}
	c = get(`{"model": "tiny", "prompt": ["Light is"], "temperature": 0, "echo": true, "max_tokens": 16}`)
	if c.Choices[0].Text != "Light is"+want {
		t.Errorf("echo: got %q, want %q", c.Choices[0].Text, "Light is"+want)
	}
	c = get(`{"model": "tiny", "prompt": "Light is", "temperature": 0, "logprobs": 2, "max_tokens": 16}`)
	lp := c.Choices[0].Logprobs
	if lp == nil || strings.Join(lp.Tokens, "") != want || len(lp.TokenLogprobs) != len(lp.Tokens) || len(lp.TopLogprobs[0]) != 2 || lp.TextOffset[0] != 0 {
		t.Errorf("logprobs %+v for %q", lp, want)
	}
}

// TestErrors: OpenAI's error shape with the matching HTTP status.
func TestErrors(t *testing.T) {
	e := newEnv(t, openai.WithAuthorizer(func(r *http.Request, scope string) error {
		switch r.Header.Get("Authorization") {
		case "Bearer bad":
			return status.Error(codes.Unauthenticated, "invalid API key")
		case "Bearer reader":
			if scope != openai.ScopeRead {
				return status.Error(codes.PermissionDenied, "the key lacks scope generate")
			}
		case "Bearer busy":
			return &openai.Error{Status: 429, Type: "rate_limit_error", Code: "rate_limit_exceeded", Message: "slow down", RetryAfter: 1500 * time.Millisecond}
		}
		return nil
	}))
	chat := func(extra string) string {
		return `{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2` + extra + `}`
	}
	tests := []struct {
		name, path, auth, body string
		status                 int
		code, param            string
	}{
		{"unknown model", "/v1/chat/completions", "", `{"model": "nope", "messages": [{"role": "user", "content": "hi"}]}`, 404, "model_not_found", "model"},
		{"unknown model get", "/v1/models/nope", "", "", 404, "model_not_found", "model"},
		{"no model", "/v1/chat/completions", "", `{"messages": [{"role": "user", "content": "hi"}]}`, 400, "", "model"},
		{"no messages", "/v1/chat/completions", "", `{"model": "tiny", "messages": []}`, 400, "", "messages"},
		{"bad role", "/v1/chat/completions", "", `{"model": "tiny", "messages": [{"role": "robot", "content": "hi"}]}`, 400, "", "messages[0].role"},
		{"image", "/v1/chat/completions", "", `{"model": "tiny", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}`, 400, "unsupported_parameter", "messages[0].content"},
		{"tools", "/v1/chat/completions", "", chat(`, "tools": [{"type": "function", "function": {"name": "f"}}]`), 400, "unsupported_parameter", "tools"},
		{"n", "/v1/chat/completions", "", chat(`, "n": 3`), 400, "", "n"},
		{"temperature", "/v1/chat/completions", "", chat(`, "temperature": 2.5`), 400, "", "temperature"},
		{"top_logprobs", "/v1/chat/completions", "", chat(`, "logprobs": true, "top_logprobs": 21`), 400, "", "top_logprobs"},
		{"logit_bias", "/v1/chat/completions", "", chat(`, "logit_bias": {"1": 5}`), 400, "unsupported_parameter", "logit_bias"},
		{"schema feature", "/v1/chat/completions", "", chat(`, "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string", "format": "email"}}}`), 400, "", "response_format"},
		{"stop with json", "/v1/chat/completions", "", chat(`, "stop": "}", "response_format": {"type": "json_object"}`), 400, "", "stop"},
		{"unmet constraint", "/v1/chat/completions", "", chat(`, "bitnet": {"require": ["metal"]}`), 400, "unmet_constraint", ""},
		{"bad json", "/v1/chat/completions", "", `{"model": `, 400, "", ""},
		{"wrong type", "/v1/chat/completions", "", `{"model": 5, "messages": []}`, 400, "", "model"},
		{"echo logprobs", "/v1/completions", "", `{"model": "tiny", "prompt": "x", "echo": true, "logprobs": 1}`, 400, "unsupported_parameter", "echo with logprobs"},
		{"two prompts", "/v1/completions", "", `{"model": "tiny", "prompt": ["a", "b"]}`, 400, "", "prompt"},
		{"not embedding", "/v1/embeddings", "", `{"model": "tiny", "input": "x"}`, 400, "model_not_supported", "model"},
		{"unauthenticated", "/v1/chat/completions", "Bearer bad", chat(""), 401, "invalid_api_key", ""},
		{"forbidden", "/v1/chat/completions", "Bearer reader", chat(""), 403, "insufficient_scope", ""},
		{"reader lists", "/v1/models", "Bearer reader", "", 200, "", ""},
		{"rate limited", "/v1/completions", "Bearer busy", `{"model": "tiny", "prompt": "x"}`, 429, "rate_limit_exceeded", ""},
	}
	for _, tt := range tests {
		method := http.MethodPost
		if tt.body == "" {
			method = http.MethodGet
		}
		req, _ := http.NewRequest(method, e.url+tt.path, strings.NewReader(tt.body))
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d (%s), want %d", tt.name, resp.StatusCode, data, tt.status)
			continue
		}
		if tt.status == 200 {
			continue
		}
		var body struct {
			Error struct {
				Message string  `json:"message"`
				Type    string  `json:"type"`
				Param   *string `json:"param"`
				Code    *string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(data, &body); err != nil || body.Error.Message == "" || body.Error.Type == "" {
			t.Errorf("%s: body %s: want {error: {message, type, param, code}}", tt.name, data)
			continue
		}
		if got := deref(body.Error.Code); got != tt.code {
			t.Errorf("%s: code %q, want %q (%s)", tt.name, got, tt.code, data)
		}
		if got := deref(body.Error.Param); got != tt.param {
			t.Errorf("%s: param %q, want %q (%s)", tt.name, got, tt.param, data)
		}
		if tt.status == 429 && resp.Header.Get("Retry-After") != "2" {
			t.Errorf("%s: Retry-After %q, want 2", tt.name, resp.Header.Get("Retry-After"))
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestAbortStopsGeneration: a client that closes a stream cancels the
// generation on the node at once (the long model would run for 30000
// tokens).
func TestAbortStopsGeneration(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url+"/v1/completions",
		strings.NewReader(`{"model": "long", "prompt": "Light is", "max_tokens": 30000, "stream": true}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(resp.Body)
	for n := 0; n < 3; { // a few chunks: generation is under way
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "data: ") {
			n++
		}
	}
	if active := e.node.LoadProto().GetActiveRequests(); active != 1 {
		t.Fatalf("active requests while streaming: %d, want 1", active)
	}
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := e.node.Manager().Loaded()[0].Stats
		if e.node.LoadProto().GetActiveRequests() == 0 && st.Cancelled == 1 {
			if st.GeneratedTokens > 20000 {
				t.Errorf("generated %d tokens before the cancel took effect", st.GeneratedTokens)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the client left: active %d, cancelled %d; want 0 and 1", e.node.LoadProto().GetActiveRequests(), st.Cancelled)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestModelsFromNode: without a registry the list comes from the router's
// (here the node's) ListModels.
func TestModelsFromNode(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.url + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l struct {
		Object string `json:"object"`
		Data   []struct {
			ID, Object, OwnedBy string
			Created             int64
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range l.Data {
		ids = append(ids, m.ID)
		if m.Object != "model" || m.Created <= 0 {
			t.Errorf("model %+v", m)
		}
	}
	want := "long,long@1,tiny,tiny@1"
	if _, err := os.Stat(filepath.Join(embedDir, "model.safetensors")); err == nil {
		want = "embed,embed@1," + want
	}
	if l.Object != "list" || strings.Join(ids, ",") != want {
		t.Errorf("got %s %v, want list %s", l.Object, ids, want)
	}
}

const embedDir = "../../testdata/models/tiny-qwen3-embed"

func mustAbs(t testing.TB, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestEmbeddings: /v1/embeddings returns the Embed RPC's vectors, as floats
// or base64 little-endian float32, in OpenAI's list shape.
func TestEmbeddings(t *testing.T) {
	if _, err := os.Stat(filepath.Join(embedDir, "model.safetensors")); err != nil {
		t.Skip("no synthetic embedding model (tools/reference/make_families.py):", err)
	}
	e := newEnv(t)
	want, err := e.client.Embed(context.Background(), &inferencev1.EmbedRequest{Model: "embed", Inputs: []string{"Light is", "OPTICKS"}})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Object string `json:"object"`
		Data   []struct {
			Object    string          `json:"object"`
			Index     int             `json:"index"`
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
		Usage struct{ PromptTokens, TotalTokens int } `json:"usage"`
	}
	for _, format := range []string{"float", "base64"} {
		resp, data := e.post(t, "/v1/embeddings", `{"model": "embed", "input": ["Light is", "OPTICKS"], "encoding_format": "`+format+`"}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", format, resp.StatusCode, data)
		}
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		if got.Object != "list" || len(got.Data) != 2 || got.Data[1].Index != 1 || got.Data[0].Object != "embedding" {
			t.Fatalf("%s: %s", format, data)
		}
		for i, d := range got.Data {
			var vals []float32
			if format == "float" {
				_ = json.Unmarshal(d.Embedding, &vals)
			} else {
				var b64 string
				_ = json.Unmarshal(d.Embedding, &b64)
				raw, err := base64.StdEncoding.DecodeString(b64)
				if err != nil {
					t.Fatal(err)
				}
				for k := 0; k+4 <= len(raw); k += 4 {
					vals = append(vals, math.Float32frombits(binary.LittleEndian.Uint32(raw[k:])))
				}
			}
			if !slices.Equal(vals, want.GetEmbeddings()[i].GetValues()) {
				t.Errorf("%s: embedding %d differs from the Embed RPC's", format, i)
			}
		}
	}
}
