package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
	"github.com/bitnet-mesh/bitnet-mesh/proto/gateway"
)

func TestWithEmptyLists(t *testing.T) {
	tests := []struct {
		name       string
		msg        proto.Message
		in         string
		protoNames bool
		want       string
	}{
		{"empty list", &inferencev1.ListModelsResponse{}, `{}`, true, `{"models":[]}`},
		{"whitespace", &inferencev1.ListModelsResponse{}, " { }\n", true, `{"models":[]}`},
		{"after other fields", &inferencev1.ListModelsResponse{NextPageToken: "b"}, `{"next_page_token":"b"}`, true,
			`{"next_page_token":"b","models":[]}`},
		{"populated", &inferencev1.ListModelsResponse{Models: []*inferencev1.ServableModel{{Name: "a"}}},
			`{"models":[{"name":"a"}]}`, true, `{"models":[{"name":"a"}]}`},
		{"maps and camel case", &registryv1.Model{Name: "a"}, `{"name":"a"}`, false,
			`{"name":"a","labels":{},"aliases":{}}`},
		{"proto names", &registryv1.Model{Name: "a", Labels: map[string]string{"k": "v"}},
			`{"name":"a","labels":{"k":"v"}}`, true, `{"name":"a","labels":{"k":"v"},"aliases":{}}`},
		{"error body untouched", &status.Status{Code: 5, Message: "x"}, `{"code":5,"message":"x"}`, true,
			`{"code":5,"message":"x"}`},
		{"well-known type untouched", &structpb.ListValue{}, `[]`, true, `[]`},
		{"not an object", &inferencev1.ListModelsResponse{}, `null`, true, `null`},
	}
	for _, tt := range tests {
		if got := string(gateway.WithEmptyListsForTest(tt.msg, []byte(tt.in), tt.protoNames)); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestEmptyListOverHTTP: GET /v1/mesh/models with nothing to list is
// {"models": []}, and an error body keeps its shape.
func TestEmptyListOverHTTP(t *testing.T) {
	f := newFake()
	f.empty = true
	hs := newGateway(t, f)
	get := func(path string) (int, map[string]json.RawMessage) {
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("GET %s: %q is not a JSON object: %v", path, body, err)
		}
		return resp.StatusCode, got
	}
	code, got := get("/v1/mesh/models")
	if code != http.StatusOK || len(got) != 1 || string(got["models"]) != "[]" {
		t.Errorf("GET /v1/mesh/models: got %d %v, want 200 {\"models\": []}", code, got)
	}
	code, got = get("/v1/nodes") // not implemented by the fake: an error body
	if _, ok := got["details"]; code != http.StatusNotImplemented || ok || got["message"] == nil {
		t.Errorf("GET /v1/nodes: got %d %v, want 501 with code and message only", code, got)
	}
}
