package inference

import (
	"context"
	"encoding/json"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/chat"
	"github.com/bitnet-mesh/bitnet-mesh/shared/constrained"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

const personSchema = `{"type": "object", "properties": {"name": {"type": "string", "maxLength": 8}, "count": {"type": "integer"}, "ok": {"type": "boolean"}}, "required": ["name", "count"], "additionalProperties": false}`

func jsonSchemaReq(seed uint64, maxTokens uint32) *inferencev1.GenerateRequest {
	return &inferencev1.GenerateRequest{Model: tinyName, Prompt: "Light is", MaxTokens: maxTokens, Temperature: proto.Float32(1), Seed: proto.Uint64(seed),
		ResponseFormat: &inferencev1.ResponseFormat{Type: inferencev1.ResponseFormatType_RESPONSE_FORMAT_TYPE_JSON_SCHEMA, JsonSchema: personSchema}}
}

// TestGenerateStructured: sampled (temperature 1) outputs under
// json_schema and json_object always parse and validate, also when
// max_tokens is barely enough (the decoder closes the document in time and
// reports length).
func TestGenerateStructured(t *testing.T) {
	n := startNode(t, nil)
	g, err := constrained.CompileSchema([]byte(personSchema))
	if err != nil {
		t.Fatal(err)
	}
	for seed := range uint64(12) {
		maxTokens := uint32(64)
		if seed%3 == 0 {
			maxTokens = 24 // `{"name":"","count":0}` is 21 bytes
		}
		req := jsonSchemaReq(seed, maxTokens)
		if seed%2 == 1 {
			req.ResponseFormat = &inferencev1.ResponseFormat{Type: inferencev1.ResponseFormatType_RESPONSE_FORMAT_TYPE_JSON_OBJECT}
		}
		stream, err := n.client.Generate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := readAll(stream)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		ids, text := idsOf(msgs)
		last := msgs[len(msgs)-1]
		var v map[string]any
		if err := json.Unmarshal([]byte(text), &v); err != nil {
			t.Fatalf("seed %d: output %q (finish %v) is not a JSON object: %v", seed, text, last.GetFinishReason(), err)
		}
		if seed%2 == 0 {
			if _, complete := g.Prefix([]byte(text)); !complete {
				t.Errorf("seed %d: output %q does not match the schema", seed, text)
			}
		}
		if got := int(last.GetUsage().GetCompletionTokens()); got != len(ids) {
			t.Errorf("seed %d: usage says %d completion tokens, the stream has %d", seed, got, len(ids))
		}
		if r := last.GetFinishReason(); r != inferencev1.FinishReason_FINISH_REASON_STOP && r != inferencev1.FinishReason_FINISH_REASON_LENGTH {
			t.Errorf("seed %d: finish %v", seed, r)
		}
	}
}

// TestGenerateLogprobs: the reported log probabilities are the log-softmax
// of the model's logits, the top alternatives ordered, the greedy token
// first among them.
func TestGenerateLogprobs(t *testing.T) {
	n := startNode(t, nil)
	m := loadTiny(t, tinyName)
	req := greedyReq("Light is", 4)
	req.Logprobs, req.TopLogprobs = true, 5
	stream, err := n.client.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := readAll(stream)
	if err != nil {
		t.Fatal(err)
	}
	var lps []*inferencev1.TokenLogprob
	for _, msg := range msgs {
		if len(msg.GetLogprobs()) != len(msg.GetTokenIds()) {
			t.Fatalf("message with %d tokens and %d logprobs", len(msg.GetTokenIds()), len(msg.GetLogprobs()))
		}
		lps = append(lps, msg.GetLogprobs()...)
	}
	if len(lps) == 0 {
		t.Fatal("no logprobs")
	}
	// The first token's distribution, computed directly (the node keeps an
	// fp16 KV cache: close, not bit-equal).
	steps := []model.Step{{Seq: m.NewSequence(), Tokens: promptOf(m, "Light is")}}
	if err := m.Forward(context.Background(), steps); err != nil {
		t.Fatal(err)
	}
	x := steps[0].Logits
	maxv := x[0]
	for _, v := range x {
		maxv = max(maxv, v)
	}
	sum := 0.0
	for _, v := range x {
		sum += math.Exp(float64(v - maxv))
	}
	logZ := float64(maxv) + math.Log(sum)
	first := lps[0]
	if want := float64(x[first.GetTokenId()]) - logZ; math.Abs(float64(first.GetLogprob())-want) > 0.02 {
		t.Errorf("first token logprob %v, want %v", first.GetLogprob(), want)
	}
	for i, lp := range lps {
		top := lp.GetTopLogprobs()
		if len(top) != 5 || top[0].GetTokenId() != lp.GetTokenId() || top[0].GetLogprob() != lp.GetLogprob() {
			t.Errorf("token %d: top %v, want 5 starting with the greedy token %d", i, top, lp.GetTokenId())
		}
		for k := 1; k < len(top); k++ {
			if top[k].GetLogprob() > top[k-1].GetLogprob() || top[k].GetLogprob() > 0 {
				t.Errorf("token %d: top not descending or above 0: %v", i, top)
			}
		}
	}
}

// TestGeneratePromptTokenIDs: prompt_token_ids generate as the same prompt
// as text does.
func TestGeneratePromptTokenIDs(t *testing.T) {
	n := startNode(t, nil)
	m := loadTiny(t, tinyName)
	run := func(req *inferencev1.GenerateRequest) string {
		stream, err := n.client.Generate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := readAll(stream)
		if err != nil {
			t.Fatal(err)
		}
		_, text := idsOf(msgs)
		return text
	}
	want := run(greedyReq("Light is", 8))
	byIDs := greedyReq("", 8)
	byIDs.PromptTokenIds = toU32(promptOf(m, "Light is"))
	if got := run(byIDs); got != want {
		t.Errorf("prompt_token_ids: got %q, want %q", got, want)
	}
}

// TestGenerateBadFeatureRequests: out-of-range or conflicting options are
// INVALID_ARGUMENT with a message naming them.
func TestGenerateBadFeatureRequests(t *testing.T) {
	n := startNode(t, nil)
	tests := []struct {
		name string
		mod  func(r *inferencev1.GenerateRequest)
		want string
	}{
		{"top_logprobs 21", func(r *inferencev1.GenerateRequest) { r.Logprobs, r.TopLogprobs = true, 21 }, "top_logprobs 21"},
		{"top_logprobs alone", func(r *inferencev1.GenerateRequest) { r.TopLogprobs = 2 }, "top_logprobs needs logprobs"},
		{"presence 3", func(r *inferencev1.GenerateRequest) { r.PresencePenalty = proto.Float32(3) }, "presence penalty"},
		{"stop with json", func(r *inferencev1.GenerateRequest) {
			r.Stop = []string{"}"}
			r.ResponseFormat = &inferencev1.ResponseFormat{Type: inferencev1.ResponseFormatType_RESPONSE_FORMAT_TYPE_JSON_OBJECT}
		}, "stop strings cannot be combined"},
		{"pattern", func(r *inferencev1.GenerateRequest) {
			r.ResponseFormat = &inferencev1.ResponseFormat{Type: inferencev1.ResponseFormatType_RESPONSE_FORMAT_TYPE_JSON_SCHEMA, JsonSchema: `{"type": "string", "pattern": "a+"}`}
		}, `"pattern"`},
		{"schema missing", func(r *inferencev1.GenerateRequest) {
			r.ResponseFormat = &inferencev1.ResponseFormat{Type: inferencev1.ResponseFormatType_RESPONSE_FORMAT_TYPE_JSON_SCHEMA}
		}, "needs json_schema"},
		{"two prompts", func(r *inferencev1.GenerateRequest) { r.PromptTokenIds = []uint32{1} }, "exactly one of prompt"},
		{"token out of range", func(r *inferencev1.GenerateRequest) { r.Prompt, r.PromptTokenIds = "", []uint32{1 << 30} }, "out of range"},
	}
	for _, tt := range tests {
		req := greedyReq("Light", 4)
		tt.mod(req)
		stream, err := n.client.Generate(context.Background(), req)
		if err == nil {
			_, err = readAll(stream)
		}
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tt.want) {
			t.Errorf("%s: got %v, want INVALID_ARGUMENT naming %q", tt.name, err, tt.want)
		}
	}
}

// chatModelDir copies the tiny model with a tokenizer_config.json holding
// template, as NAME under a fresh root.
func chatModelDir(t *testing.T, name, template string) string {
	t.Helper()
	root := t.TempDir()
	dst := filepath.Join(root, name)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(modelsDir, tinyName)
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, _ := json.Marshal(map[string]any{"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "chat_template": template})
	if err := os.WriteFile(filepath.Join(dst, "tokenizer_config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestChatTemplateFromModel: chats are rendered with the template in the
// model's tokenizer_config.json; a template that fails is INVALID_ARGUMENT
// with its message.
func TestChatTemplateFromModel(t *testing.T) {
	const tmpl = "{{ bos_token }}{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no system messages') }}{% endif %}[{{ m.role }}]{{ m.content | trim }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}[assistant]{% if greeting is defined %}{{ greeting }}{% endif %}{% endif %}"
	root := chatModelDir(t, "chatty", tmpl)
	srv, err := NewServer(DirFetcher{Root: root}, WithNodeName("n"), WithKernelCap(kernels.Generic))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client := serveLocal(t, srv)
	ctx := context.Background()
	msgs := []*inferencev1.ChatMessage{{Role: inferencev1.Role_ROLE_USER, Content: " hi "}}
	tr, err := client.Tokenize(ctx, &inferencev1.TokenizeRequest{Model: "chatty", Messages: msgs})
	if err != nil {
		t.Fatal(err)
	}
	m := loadTiny(t, tinyName)
	want, _ := chat.Parse(tmpl, "<|begin_of_text|>", "<|end_of_text|>")
	text, _ := want.Apply([]chat.Message{{Role: "user", Content: " hi "}}, chat.Options{AddGenerationPrompt: true})
	if got, wantIDs := tr.GetTokenIds(), toU32(m.Tokenizer().Encode(text)); !equalU32(got, wantIDs) {
		t.Errorf("tokenized chat: got %v, want %v (%q)", got, wantIDs, text)
	}
	// chat_template_args reach the template.
	args, _ := structpb.NewStruct(map[string]any{"greeting": "Sure"})
	stream, err := client.Generate(ctx, &inferencev1.GenerateRequest{Model: "chatty", Messages: msgs, MaxTokens: 2, Temperature: proto.Float32(0), Echo: true, ChatTemplateArgs: args})
	if err != nil {
		t.Fatal(err)
	}
	out, err := readAll(stream)
	if err != nil {
		t.Fatal(err)
	}
	if _, text := idsOf(out); !strings.HasPrefix(text, "[user]hi[assistant]Sure") {
		t.Errorf("echo with chat_template_args: got %q, want it to start with [user]hi[assistant]Sure", text)
	}
	sys := []*inferencev1.ChatMessage{{Role: inferencev1.Role_ROLE_SYSTEM, Content: "x"}}
	stream, err = client.Generate(ctx, &inferencev1.GenerateRequest{Model: "chatty", Messages: sys, MaxTokens: 2})
	if err == nil {
		_, err = readAll(stream)
	}
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "no system messages") {
		t.Errorf("raise_exception: got %v, want INVALID_ARGUMENT with the template's message", err)
	}

	broken := chatModelDir(t, "broken", "{% for m in messages %}")
	bsrv, err := NewServer(DirFetcher{Root: broken}, WithNodeName("n"), WithKernelCap(kernels.Generic))
	if err != nil {
		t.Fatal(err)
	}
	defer bsrv.Close()
	bclient := serveLocal(t, bsrv)
	stream, err = bclient.Generate(ctx, &inferencev1.GenerateRequest{Model: "broken", Messages: msgs, MaxTokens: 2})
	if err == nil {
		_, err = readAll(stream)
	}
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "chat template") {
		t.Errorf("unparsable template: got %v, want INVALID_ARGUMENT naming the chat template", err)
	}
	// Plain prompts still work on that model.
	stream, err = bclient.Generate(ctx, &inferencev1.GenerateRequest{Model: "broken", Prompt: "Light", MaxTokens: 2})
	if err == nil {
		_, err = readAll(stream)
	}
	if err != nil {
		t.Errorf("plain prompt on a model with a broken template: %v", err)
	}
}

func equalU32(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// serveLocal serves srv on a loopback gRPC listener for the test.
func serveLocal(t *testing.T, srv *Server) inferencev1.InferenceServiceClient {
	t.Helper()
	lis, err := netListen()
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
	t.Cleanup(func() { conn.Close(); gs.Stop() })
	return inferencev1.NewInferenceServiceClient(conn)
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
