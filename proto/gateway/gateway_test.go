package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/proto/gateway"
)

// contractBody is the request body of the REST contract (issue 4).
const contractBody = `{"model": "tiny:prod", "prompt": "Light is", "max_tokens": 16, "temperature": 0, "require": ["avx512"]}`

// fakeInference streams canned responses, or fails as the prompt asks.
type fakeInference struct {
	inferencev1.UnimplementedInferenceServiceServer
	got   chan *inferencev1.GenerateRequest // every request, for the test to check
	ids   chan string                       // x-request-id metadata of every request
	empty bool                              // ListModels finds nothing
}

func (f *fakeInference) Generate(req *inferencev1.GenerateRequest, stream grpc.ServerStreamingServer[inferencev1.GenerateResponse]) error {
	f.got <- req
	md, _ := metadata.FromIncomingContext(stream.Context())
	f.ids <- strings.Join(md.Get("x-request-id"), ",")
	if strings.Contains(strings.Join(req.GetRequire(), ","), "sve") {
		return status.Error(codes.FailedPrecondition, `no node offers "sve"`)
	}
	ref := &modelv1.ModelRef{Name: "tiny", Version: 3, Alias: "prod"}
	if err := stream.Send(&inferencev1.GenerateResponse{Text: " the", TokenIds: []uint32{7}, Node: "node-a", Kernel: "avx512", Model: ref}); err != nil {
		return err
	}
	if req.GetPrompt() == "fail midway" {
		return status.Error(codes.Unavailable, "node-a went away")
	}
	if err := stream.Send(&inferencev1.GenerateResponse{Text: " fastest", TokenIds: []uint32{8}}); err != nil {
		return err
	}
	return stream.Send(&inferencev1.GenerateResponse{ // no text: the REST line still has "text": ""
		FinishReason: inferencev1.FinishReason_FINISH_REASON_LENGTH,
		Usage:        &modelv1.Usage{PromptTokens: 3, CompletionTokens: 2, TotalTokens: 5},
		Node:         "node-a", Kernel: "avx512", Model: ref,
	})
}

func (f *fakeInference) ListModels(context.Context, *inferencev1.ListModelsRequest) (*inferencev1.ListModelsResponse, error) {
	if f.empty {
		return &inferencev1.ListModelsResponse{}, nil
	}
	return &inferencev1.ListModelsResponse{Models: []*inferencev1.ServableModel{{Name: "tiny", LatestVersion: 3}}}, nil
}

// newGateway serves f over gRPC in memory and returns a REST gateway to it.
func newGateway(t *testing.T, f *fakeInference) *httptest.Server {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	inferencev1.RegisterInferenceServiceServer(srv, f)
	go srv.Serve(lis) // stopped by the cleanup below
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	mux := gateway.NewServeMux()
	if err := inferencev1.RegisterInferenceServiceHandlerClient(context.Background(), mux, inferencev1.NewInferenceServiceClient(conn)); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs
}

func newFake() *fakeInference {
	return &fakeInference{got: make(chan *inferencev1.GenerateRequest, 8), ids: make(chan string, 8)}
}

// post sends body to path and returns the response and its lines.
func post(t *testing.T, url, body string) (*http.Response, []map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "req-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not a JSON object: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return resp, lines
}

func TestGenerateContract(t *testing.T) {
	f := newFake()
	hs := newGateway(t, f)
	resp, lines := post(t, hs.URL+"/v1/generate", contractBody)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got status %d, want 200 (lines %v)", resp.StatusCode, lines)
	}
	if ct := resp.Header.Get("Content-Type"); ct != gateway.NDJSONContentType {
		t.Errorf("got Content-Type %q, want %q", ct, gateway.NDJSONContentType)
	}

	req := <-f.got
	if req.GetModel() != "tiny:prod" || req.GetPrompt() != "Light is" || req.GetMaxTokens() != 16 ||
		req.Temperature == nil || req.GetTemperature() != 0 || strings.Join(req.GetRequire(), ",") != "avx512" {
		t.Errorf("server got request %v, want the contract's fields with temperature set to 0", req)
	}
	if id := <-f.ids; id != "req-42" {
		t.Errorf("got x-request-id %q, want req-42", id)
	}

	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3: %v", len(lines), lines)
	}
	var text string
	for _, l := range lines {
		delta, ok := l["text"].(string)
		if !ok {
			t.Errorf("line %v has no text delta", l)
		}
		text += delta
	}
	if text != " the fastest" {
		t.Errorf("got text %q, want %q", text, " the fastest")
	}
	last := lines[len(lines)-1]
	want := map[string]any{"finish_reason": "FINISH_REASON_LENGTH", "node": "node-a", "kernel": "avx512"}
	for k, v := range want {
		if last[k] != v {
			t.Errorf("last line %s: got %v, want %v", k, last[k], v)
		}
	}
	if u, ok := last["usage"].(map[string]any); !ok || u["completion_tokens"] != float64(2) {
		t.Errorf("last line usage: got %v, want completion_tokens 2", last["usage"])
	}
	if _, ok := lines[0]["finish_reason"]; ok {
		t.Errorf("first line has a finish reason: %v", lines[0])
	}
}

func TestGenerateErrors(t *testing.T) {
	hs := newGateway(t, newFake())
	tests := []struct {
		name, body string
		wantStatus int
		wantLines  int    // lines before the error line
		wantErr    string // in the error message
	}{
		{"unmet constraint", `{"model": "tiny", "prompt": "x", "require": ["sve"]}`, http.StatusBadRequest, 0, `no node offers "sve"`},
		{"malformed JSON", `{"model": "tiny", "prompt": `, http.StatusBadRequest, 0, ""},
		{"unknown field", `{"model": "tiny", "prompt": "x", "max_token": 3}`, http.StatusBadRequest, 0, "max_token"},
		{"wrong type", `{"model": "tiny", "max_tokens": "many"}`, http.StatusBadRequest, 0, ""},
		{"fails after the first token", `{"model": "tiny", "prompt": "fail midway"}`, http.StatusOK, 1, "node-a went away"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, lines := post(t, hs.URL+"/v1/generate", tt.body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got status %d, want %d (lines %v)", resp.StatusCode, tt.wantStatus, lines)
			}
			if len(lines) != tt.wantLines+1 {
				t.Fatalf("got %d lines, want %d: %v", len(lines), tt.wantLines+1, lines)
			}
			msg := lines[len(lines)-1]
			if e, ok := msg["error"].(map[string]any); ok { // a stream's error line
				msg = e
			}
			if m, _ := msg["message"].(string); !strings.Contains(m, tt.wantErr) {
				t.Errorf("got error %v, want a message containing %q", msg, tt.wantErr)
			}
		})
	}
}

func TestUnaryUsesProtoNames(t *testing.T) {
	hs := newGateway(t, newFake())
	resp, err := http.Get(hs.URL + "/v1/mesh/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Models []map[string]any `json:"models"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || len(got.Models) != 1 || got.Models[0]["latest_version"] != float64(3) {
		t.Errorf("GET /v1/mesh/models: got status %d, models %v; want 200 and tiny with latest_version 3", resp.StatusCode, got.Models)
	}
}

// TestContractJSONDecodes checks the contract's body against the message
// directly, as gRPC-JSON clients would send it.
func TestContractJSONDecodes(t *testing.T) {
	var req inferencev1.GenerateRequest
	if err := protojson.Unmarshal([]byte(contractBody), &req); err != nil {
		t.Fatalf("contract body: %v", err)
	}
	if req.GetMaxTokens() != 16 || req.Temperature == nil {
		t.Errorf("got %v, want max_tokens 16 and temperature set", &req)
	}
}

func TestWithEmptyText(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{}`, `{"text":""}`},
		{`{ }`, `{"text":""}`},
		{`{"node":"a"}`, `{"text":"","node":"a"}`},
		{`{ "node": "a" }` + "\n", `{"text":"","node": "a" }`},
	}
	for _, tt := range tests {
		if got := string(gateway.WithEmptyTextForTest([]byte(tt.in))); got != tt.want {
			t.Errorf("withEmptyText(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}
