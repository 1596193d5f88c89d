package tokenizer

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

var testdataDir = filepath.Join("..", "..", "testdata", "tokenizer")

func readGzip(t testing.TB, name string) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join(testdataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return data
}

// llama3 parses the real LLaMA 3 tokenizer once per test binary.
var llama3 = sync.OnceValues(func() (*Tokenizer, error) {
	f, err := os.Open(filepath.Join(testdataDir, "llama3.json.gz"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	return Parse(data)
})

func loadLlama3(t testing.TB) *Tokenizer {
	t.Helper()
	tk, err := llama3()
	if err != nil {
		t.Fatalf("llama3 tokenizer: %v", err)
	}
	return tk
}

type vector struct {
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
}

// TestLlama3Vectors checks exact agreement with llama3-tokenizer-js on the
// committed vectors (see tools/llama3-tokenizer).
func TestLlama3Vectors(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: thousands of vectors (TestLlama3Specials and the Opticks goldens stay)")
	}
	tk := loadLlama3(t)
	var vecs []vector
	if err := json.Unmarshal(readGzip(t, "llama3-vectors.json.gz"), &vecs); err != nil {
		t.Fatal(err)
	}
	if len(vecs) < 300 {
		t.Fatalf("got %d vectors, want >= 300", len(vecs))
	}
	fails := 0
	for i, v := range vecs {
		got := tk.Encode(v.Text)
		if v.IDs == nil {
			v.IDs = []int{}
		}
		if !slices.Equal(got, v.IDs) {
			fails++
			if fails <= 10 {
				t.Errorf("vector %d Encode(%q):\n got %v\nwant %v", i, v.Text, got, v.IDs)
			}
		}
		if dec := tk.Decode(v.IDs); dec != v.Text {
			t.Errorf("vector %d Decode = %q, want %q", i, dec, v.Text)
		}
	}
	if fails > 0 {
		t.Errorf("%d of %d vectors differ", fails, len(vecs))
	}
}

func TestLlama3Specials(t *testing.T) {
	tk := loadLlama3(t)
	tests := []struct {
		tok string
		id  int
	}{
		{"<|begin_of_text|>", 128000}, {"<|end_of_text|>", 128001}, {"<|start_header_id|>", 128006},
		{"<|end_header_id|>", 128007}, {"<|eot_id|>", 128009}, {"<|reserved_special_token_250|>", 128255},
	}
	for _, tt := range tests {
		id, ok := tk.TokenID(tt.tok)
		if !ok || id != tt.id {
			t.Errorf("TokenID(%q) = %d, %v; want %d", tt.tok, id, ok, tt.id)
		}
		if !tk.IsSpecial(tt.id) {
			t.Errorf("IsSpecial(%d) = false, want true", tt.id)
		}
	}
	if got, want := tk.VocabSize(), 128256; got != want {
		t.Errorf("VocabSize = %d, want %d", got, want)
	}
	if got, want := tk.PreTokenizer(), PreLlama3; got != want {
		t.Errorf("PreTokenizer = %q, want %q", got, want)
	}
	// Special tokens are plain text for EncodeOrdinary.
	ord := tk.EncodeOrdinary("<|eot_id|>")
	if slices.Contains(ord, 128009) || tk.Decode(ord) != "<|eot_id|>" {
		t.Errorf("EncodeOrdinary(<|eot_id|>) = %v", ord)
	}
}
