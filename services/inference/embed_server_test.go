package inference

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// embedName is the synthetic Qwen3 BitNet embedding checkpoint
// (tools/reference/make_families.py): its tokenizer appends <|endoftext|>.
const embedName = "tiny-qwen3-embed"

// embedRoot returns the models root holding embedName.
func embedRoot(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(modelsDir, embedName, "model.safetensors")); err != nil {
		t.Skip("no synthetic embedding model:", err)
	}
	return modelsDir
}

var embedTexts = []string{"Light is", "The rays of the Sun", "reflected and refracted by the Prism, which", "OPTICKS"}

func TestEmbedMatchesModel(t *testing.T) {
	root := embedRoot(t)
	n := startNodeAt(t, root, nil)
	m, err := model.Load(filepath.Join(root, embedName), model.WithKVType(model.KVFloat16)) // as the node serves it
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if c := m.Config(); c.Family() != model.FamilyQwen3 || !c.IsEmbedding() || len(c.EmbedSuffix) != 1 || c.EmbedSuffix[0] != 598 {
		t.Fatalf("embed model config %v, suffix %v: want qwen3, last-token pooling, suffix [598]", c, c.EmbedSuffix)
	}
	ctx := context.Background()
	resp, err := n.client.Embed(ctx, &inferencev1.EmbedRequest{Model: embedName, Inputs: embedTexts})
	if err != nil {
		t.Fatal(err)
	}
	H := m.Config().HiddenSize
	if len(resp.GetEmbeddings()) != len(embedTexts) || resp.GetDimensions() != uint32(H) || resp.GetNode() != "node-a" ||
		resp.GetModel().GetName() != embedName || resp.GetEncoding() != inferencev1.EmbeddingEncoding_EMBEDDING_ENCODING_FLOAT {
		t.Fatalf("response %v: want %d float embeddings of %d dims from node-a", resp, len(embedTexts), H)
	}
	tokens := 0
	full := make([][]float32, len(embedTexts))
	for i, text := range embedTexts {
		ids := model.EmbedIDs(m.Config(), m.Tokenizer(), text)
		want, err := m.Embed(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		e := resp.GetEmbeddings()[i]
		if e.GetIndex() != uint32(i) || e.GetTokens() != uint32(len(ids)) {
			t.Errorf("embedding %d: index %d, %d tokens; want %d tokens", i, e.GetIndex(), e.GetTokens(), len(ids))
		}
		if d := maxAbsDiff32(e.GetValues(), want); d > 1e-5 {
			t.Errorf("%q: server embedding differs from Model.Embed by %g", text, d)
		}
		full[i] = e.GetValues()
		tokens += len(ids)
	}
	if u := resp.GetUsage(); u.GetPromptTokens() != uint32(tokens) || u.GetTotalTokens() != uint32(tokens) {
		t.Errorf("usage %v, want %d prompt tokens", u, tokens)
	}

	// Matryoshka truncation renormalises the first dimensions; the int8 and
	// binary encodings encode the same vectors.
	const dims = 16
	for _, enc := range []inferencev1.EmbeddingEncoding{inferencev1.EmbeddingEncoding_EMBEDDING_ENCODING_FLOAT,
		inferencev1.EmbeddingEncoding_EMBEDDING_ENCODING_INT8, inferencev1.EmbeddingEncoding_EMBEDDING_ENCODING_BINARY} {
		r, err := n.client.Embed(ctx, &inferencev1.EmbedRequest{Model: embedName, Inputs: embedTexts, Dimensions: dims, Encoding: enc})
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range r.GetEmbeddings() {
			want := append([]float32(nil), full[i][:dims]...)
			model.NormalizeL2(want)
			switch enc {
			case inferencev1.EmbeddingEncoding_EMBEDDING_ENCODING_FLOAT:
				if d := maxAbsDiff32(e.GetValues(), want); len(e.GetValues()) != dims || d > 1e-6 {
					t.Errorf("truncated %d: %d dims, differs by %g", i, len(e.GetValues()), d)
				}
			case inferencev1.EmbeddingEncoding_EMBEDDING_ENCODING_INT8:
				got := make([]float32, len(e.GetInt8Values()))
				for k, q := range e.GetInt8Values() {
					got[k] = float32(q) * e.GetScale()
				}
				if d := maxAbsDiff32(got, want); len(got) != dims || d > float64(e.GetScale())/2+1e-6 {
					t.Errorf("int8 %d: dequantised differs by %g (scale %g)", i, d, e.GetScale())
				}
			default:
				if len(e.GetBinary()) != dims/8 {
					t.Fatalf("binary %d: %d bytes, want %d", i, len(e.GetBinary()), dims/8)
				}
				for k, v := range want {
					if bit := e.GetBinary()[k/8]>>(7-k%8)&1 == 1; bit != (v > 0) {
						t.Errorf("binary %d dim %d: bit %v for value %g", i, k, bit, v)
					}
				}
			}
		}
	}

	// Pre-tokenized inputs are used as given.
	ids := model.EmbedIDs(m.Config(), m.Tokenizer(), embedTexts[1])
	tin := &inferencev1.TokenIDs{}
	for _, id := range ids {
		tin.Ids = append(tin.Ids, uint32(id))
	}
	r, err := n.client.Embed(ctx, &inferencev1.EmbedRequest{Model: embedName, TokenInputs: []*inferencev1.TokenIDs{tin}})
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff32(r.GetEmbeddings()[0].GetValues(), full[1]); d > 1e-6 {
		t.Errorf("token input differs from its text by %g", d)
	}

	// More inputs than one request queues at once.
	many := make([]string, 3*embedWindow+1)
	for i := range many {
		many[i] = embedTexts[i%len(embedTexts)]
	}
	r, err = n.client.Embed(ctx, &inferencev1.EmbedRequest{Model: embedName, Inputs: many})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range r.GetEmbeddings() {
		if d := maxAbsDiff32(e.GetValues(), full[i%len(embedTexts)]); d > 1e-5 {
			t.Errorf("input %d of %d: differs by %g", i, len(many), d)
		}
	}
}

func TestEmbedErrors(t *testing.T) {
	n := startNodeAt(t, embedRoot(t), nil)
	ctx := context.Background()
	long := strings.Repeat("light ", 2000)
	tests := []struct {
		name string
		req  *inferencev1.EmbedRequest
		code codes.Code
		msg  string
	}{
		{"no model", &inferencev1.EmbedRequest{Inputs: []string{"a"}}, codes.InvalidArgument, "model"},
		{"no inputs", &inferencev1.EmbedRequest{Model: embedName}, codes.InvalidArgument, "no inputs"},
		{"both", &inferencev1.EmbedRequest{Model: embedName, Inputs: []string{"a"}, TokenInputs: []*inferencev1.TokenIDs{{Ids: []uint32{1}}}}, codes.InvalidArgument, "exactly one"},
		{"too many", &inferencev1.EmbedRequest{Model: embedName, Inputs: make([]string, MaxEmbedInputs+1)}, codes.InvalidArgument, "at most"},
		{"empty token input", &inferencev1.EmbedRequest{Model: embedName, TokenInputs: []*inferencev1.TokenIDs{{}}}, codes.InvalidArgument, "empty"},
		{"token out of range", &inferencev1.EmbedRequest{Model: embedName, TokenInputs: []*inferencev1.TokenIDs{{Ids: []uint32{600}}}}, codes.InvalidArgument, "out of range"},
		{"dimensions", &inferencev1.EmbedRequest{Model: embedName, Inputs: []string{"a"}, Dimensions: 4096}, codes.InvalidArgument, "dimensions"},
		{"encoding", &inferencev1.EmbedRequest{Model: embedName, Inputs: []string{"a"}, Encoding: 9}, codes.InvalidArgument, "encoding"},
		{"too long", &inferencev1.EmbedRequest{Model: embedName, Inputs: []string{long}}, codes.InvalidArgument, "truncate"},
		{"causal LM", &inferencev1.EmbedRequest{Model: tinyName, Inputs: []string{"a"}}, codes.FailedPrecondition, "not an embedding model"},
		{"unknown model", &inferencev1.EmbedRequest{Model: "nope", Inputs: []string{"a"}}, codes.NotFound, "nope"},
		{"require", &inferencev1.EmbedRequest{Model: embedName, Inputs: []string{"a"}, Require: []string{"metal"}}, codes.FailedPrecondition, "metal"},
	}
	for _, tc := range tests {
		_, err := n.client.Embed(ctx, tc.req)
		if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: got %v, want %v naming %q", tc.name, err, tc.code, tc.msg)
		}
	}
	// Generation with an embedding model (no output head).
	gs, err := n.client.Generate(ctx, &inferencev1.GenerateRequest{Model: embedName, Prompt: "Light is"})
	if err == nil {
		_, err = gs.Recv()
	}
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "embedding model") {
		t.Errorf("Generate with an embedding model: got %v, want FAILED_PRECONDITION", err)
	}
	r, err := n.client.Embed(ctx, &inferencev1.EmbedRequest{Model: embedName, Inputs: []string{long}, Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.GetEmbeddings()[0].GetTokens(); got != 512 {
		t.Errorf("truncated input ran as %d tokens, want the context (512)", got)
	}
}

func TestRESTEmbed(t *testing.T) {
	n := startNodeAt(t, embedRoot(t), nil)
	hs := startREST(t, n)
	body := `{"model": "tiny-qwen3-embed", "inputs": ["Light is", "OPTICKS"], "dimensions": 8, "encoding": "EMBEDDING_ENCODING_INT8"}`
	resp, err := http.Post(hs.URL+"/v1/embed", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Embeddings []struct {
			Index      int       `json:"index"`
			Int8Values []int     `json:"int8_values"`
			Scale      float64   `json:"scale"`
			Values     []float64 `json:"values"`
		} `json:"embeddings"`
		Dimensions int    `json:"dimensions"`
		Node       string `json:"node"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || len(out.Embeddings) != 2 || out.Dimensions != 8 || out.Node != "node-a" ||
		len(out.Embeddings[1].Int8Values) != 8 || out.Embeddings[1].Index != 1 || out.Embeddings[0].Scale <= 0 {
		t.Fatalf("got %s %+v", resp.Status, out)
	}
	resp2, err := http.Post(hs.URL+"/v1/embed", "application/json", strings.NewReader(`{"model": "tiny-qwen3-embed"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusBadRequest {
		t.Errorf("no inputs: got %s, want 400", resp2.Status)
	}
}

func maxAbsDiff32(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}
