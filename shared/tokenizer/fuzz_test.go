package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse feeds arbitrary documents to Parse: it must return a tokenizer or
// an error, never panic, and a parsed tokenizer must encode without panics.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile(filepath.Join(testdataDir, "opticks-bpe600.json")); err == nil {
		f.Add(data)
	}
	f.Add(testJSON([]string{"ab"}, []string{"a b"}, nil, nil))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0},"merges":[["a","a"]]},"pre_tokenizer":{"type":"ByteLevel"}}`))
	// SentencePiece-style documents: normalizers, Metaspace, byte fallback.
	f.Add([]byte(`{"normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"\u2581"},{"type":"Replace","pattern":{"String":" "},"content":"\u2581"},{"type":"NFKC"}]},` +
		`"decoder":{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"\u2581"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]},` +
		`"model":{"type":"BPE","unk_token":"<unk>","fuse_unk":true,"byte_fallback":true,"vocab":{"<unk>":0,"<0x41>":1,"\u2581":2,"a":3,"\u2581a":4},"merges":["\u2581 a"]}}`))
	f.Add([]byte(`{"pre_tokenizer":{"type":"Metaspace","replacement":"\u2581","prepend_scheme":"first","split":true},"decoder":{"type":"Metaspace","replacement":"\u2581"},` +
		`"model":{"type":"BPE","vocab":{"\u2581":0,"b":1,"\u2581b":2},"merges":[["\u2581","b"]]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 { // per-input cost bound: parsing is linear, a bigger input adds nothing
			return
		}
		tk, err := Parse(data)
		if err != nil {
			return
		}
		ids := tk.Encode("Hello, world! <|begin_of_text|> 123 \u00e9\u00e9 \n\n")
		_ = tk.Decode(ids)
		if tk.VocabSize() <= 1<<16 { // sparse huge ids make Tokens slow, not wrong
			if got := len(tk.Tokens()); got != tk.VocabSize() {
				t.Fatalf("len(Tokens()) = %d, want %d", got, tk.VocabSize())
			}
			_ = tk.Merges()
		}
	})
}

// FuzzEncodeDecode checks decode(encode(s)) == s with the Opticks tokenizer
// (every byte is a token) and that stream decoding yields s for valid UTF-8.
func FuzzEncodeDecode(f *testing.F) {
	tk, err := Load(filepath.Join(testdataDir, "opticks-bpe600.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", "the light", "It's  1704.\r\n\r\n", "<|begin_of_text|>x", "\u00e9\U0001F600 \u3000\u00a0x", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1<<16 { // per-input cost bound
			return
		}
		ids := tk.Encode(s)
		if got := tk.Decode(ids); got != s {
			t.Fatalf("Decode(Encode(%q)) = %q", s, got)
		}
		ord := tk.EncodeOrdinary(s)
		if got := tk.Decode(ord); got != s {
			t.Fatalf("Decode(EncodeOrdinary(%q)) = %q", s, got)
		}
		for _, id := range ord {
			if tk.IsSpecial(id) {
				t.Fatalf("EncodeOrdinary(%q) produced special token %d", s, id)
			}
		}
		d := tk.NewDecoder()
		var sb strings.Builder
		for _, id := range ids {
			p := d.Add(id)
			if !utf8.ValidString(p) {
				t.Fatalf("stream piece %q is not valid UTF-8", p)
			}
			sb.WriteString(p)
		}
		sb.WriteString(d.Flush())
		if utf8.ValidString(s) && sb.String() != s {
			t.Fatalf("stream decode of %q = %q", s, sb.String())
		}
		if !utf8.ValidString(sb.String()) {
			t.Fatalf("stream decode of %q is not valid UTF-8", s)
		}
	})
}

// FuzzLlama3Scanner checks that the scanner tiles any input and that every
// piece but whitespace runs is made of the classes the pattern allows.
func FuzzLlama3Scanner(f *testing.F) {
	for _, s := range []string{"it's  a\n\n test 12345!!", "\xff\xfe ab", "\u00a0\u00a0x", "  \r\n  x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1<<16 { // per-input cost bound
			return
		}
		for _, next := range []func(string, int) int{nextLlama3, nextGPT2} {
			for i := 0; i < len(s); {
				e := next(s, i)
				if e <= i || e > len(s) {
					t.Fatalf("scanner at %d of %q returned %d", i, s, e)
				}
				i = e
			}
		}
	})
}
