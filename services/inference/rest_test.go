package inference

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/proto/gateway"
)

// restLine is one NDJSON line of POST /v1/generate.
type restLine struct {
	Text         string   `json:"text"`
	TokenIDs     []uint32 `json:"token_ids"`
	FinishReason string   `json:"finish_reason"`
	Node         string   `json:"node"`
	Kernel       string   `json:"kernel"`
	Usage        *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func startREST(t *testing.T, n *testNode) *httptest.Server {
	t.Helper()
	mux := gateway.NewServeMux()
	if err := inferencev1.RegisterInferenceServiceHandlerClient(context.Background(), mux, n.client); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs
}

func TestRESTGenerate(t *testing.T) {
	n := startNode(t, nil)
	hs := startREST(t, n)
	m := loadTiny(t, tinyName)
	body := `{"model": "` + tinyName + `", "prompt": "Light is", "max_tokens": 8, "temperature": 0}`
	resp, err := http.Post(hs.URL+"/v1/generate", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), gateway.NDJSONContentType) {
		t.Fatalf("got %s %q, want 200 NDJSON", resp.Status, resp.Header.Get("Content-Type"))
	}
	var lines []restLine
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var l restLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		t.Fatal("no lines")
	}
	var ids []int
	var text strings.Builder
	for _, l := range lines {
		if l.Error != nil {
			t.Fatalf("error line: %+v", l.Error)
		}
		for _, id := range l.TokenIDs {
			ids = append(ids, int(id))
		}
		text.WriteString(l.Text)
	}
	want := directGreedy(t, m, promptOf(m, "Light is"), 8)
	if !slices.Equal(ids, want) {
		t.Errorf("got token IDs %v, want %v", ids, want)
	}
	if got, w := text.String(), m.Tokenizer().DecodeSkipSpecial(want); got != w {
		t.Errorf("got text %q, want %q", got, w)
	}
	last := lines[len(lines)-1]
	if last.FinishReason == "" || last.Node != "node-a" || last.Kernel != "generic" || last.Usage == nil || last.Usage.CompletionTokens != len(want) {
		t.Errorf("last line %+v: want finish reason, usage, node and kernel", last)
	}
}

func TestRESTErrors(t *testing.T) {
	n := startNode(t, nil)
	hs := startREST(t, n)
	tests := []struct {
		name, body string
		want       int
	}{
		{"unknown model", `{"model": "nope", "prompt": "x"}`, http.StatusNotFound},
		{"malformed JSON", `{"model": `, http.StatusBadRequest},
		{"unknown field", `{"model": "` + tinyName + `", "prompt": "x", "max_tokenz": 3}`, http.StatusBadRequest},
		{"unmet constraint", `{"model": "` + tinyName + `", "prompt": "x", "require": ["avx512"]}`, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(hs.URL+"/v1/generate", "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("got %s, want %d", resp.Status, tc.want)
			}
		})
	}
	resp, err := http.Get(hs.URL + "/v1/node")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info struct {
		Node struct {
			Name string `json:"name"`
		} `json:"node"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || info.Node.Name != "node-a" {
		t.Errorf("GET /v1/node: got %+v, %v", info, err)
	}
}
