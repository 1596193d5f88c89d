package tokenizer

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite golden files")

func opticksText(t testing.TB) string {
	t.Helper()
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Skipf("go env GOROOT: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(goroot)), "src", "testdata", "Isaac.Newton-Opticks.txt"))
	if err != nil {
		t.Skipf("opticks corpus: %v", err)
	}
	return string(data)
}

func loadOpticks(t testing.TB) *Tokenizer {
	t.Helper()
	tk, err := Load(filepath.Join(testdataDir, "opticks-bpe600.json"))
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestOpticksRoundTrip(t *testing.T) {
	tk := loadOpticks(t)
	text := opticksText(t)
	ids := tk.Encode(text)
	if got := tk.Decode(ids); got != text {
		t.Fatalf("Decode(Encode(corpus)) differs from the corpus (lengths %d, %d)", len(got), len(text))
	}
	if len(ids) >= len(text)/2 {
		t.Errorf("got %d tokens for %d bytes, want fewer than half", len(ids), len(text))
	}
	for _, id := range ids {
		if id < 0 || id >= 598 {
			t.Fatalf("id %d out of the model vocabulary [0, 598)", id)
		}
	}
	if got, want := tk.VocabSize(), 600; got != want {
		t.Errorf("VocabSize = %d, want %d", got, want)
	}
}

// TestOpticksGolden pins the encodings of a few strings (regenerate with
// -update after an intended change).
func TestOpticksGolden(t *testing.T) {
	tk := loadOpticks(t)
	inputs := []string{
		"", "the light", "The Rays of Light", "  spaces  ", "It's 1704.\n\nNEWTON",
		"<|begin_of_text|>the<|end_of_text|>", "\u00e9t\u00e9 \U0001F600",
	}
	got := map[string][]int{}
	for _, in := range inputs {
		got[in] = tk.Encode(in)
	}
	path := filepath.Join(testdataDir, "opticks-golden.json")
	if *update {
		var sb strings.Builder
		sb.WriteString("{\n")
		for i, in := range inputs {
			k, _ := json.Marshal(in)
			v, _ := json.Marshal(got[in])
			sep := ",\n"
			if i == len(inputs)-1 {
				sep = "\n"
			}
			fmt.Fprintf(&sb, " %s: %s%s", k, v, sep)
		}
		sb.WriteString("}\n")
		if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	var want map[string][]int
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	for _, in := range inputs {
		if !slices.Equal(got[in], want[in]) {
			t.Errorf("Encode(%q) = %v, want %v", in, got[in], want[in])
		}
	}
	if ids := got["<|begin_of_text|>the<|end_of_text|>"]; ids[0] != 598 || ids[len(ids)-1] != 599 {
		t.Errorf("special tokens not matched: %v", ids)
	}
}

// testJSON builds a tokenizer.json with the 256 byte tokens (ids 0..255 in
// byte order), extra tokens and merges (byte-level form), added tokens and a
// pre-tokenizer.
func testJSON(extra []string, merges []string, added []map[string]any, pre any) []byte {
	bl := newByteLevel()
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[string(bl.enc[b])] = b
	}
	for i, e := range extra {
		vocab[e] = 256 + i
	}
	if pre == nil {
		pre = map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}
	}
	if added == nil {
		added = []map[string]any{}
	}
	doc := map[string]any{
		"added_tokens": added, "normalizer": nil, "pre_tokenizer": pre,
		"decoder": map[string]any{"type": "ByteLevel"},
		"model":   map[string]any{"type": "BPE", "vocab": vocab, "merges": merges},
	}
	data, _ := json.Marshal(doc)
	return data
}

func mustParse(t testing.TB, data []byte) *Tokenizer {
	t.Helper()
	tk, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestParseErrors(t *testing.T) {
	valid := string(testJSON([]string{"ab"}, []string{"a b"}, nil, nil))
	tests := []struct {
		name, doc, want string
	}{
		{"not json", "{", "parse tokenizer.json"},
		{"wordpiece", `{"model":{"type":"WordPiece","vocab":{}}}`, "WordPiece"},
		{"no vocab", `{"model":{"type":"BPE"}}`, "vocab is missing"},
		{"duplicate id", `{"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{"a":1,"b":1}}}`, "id 1 is used by both"},
		{"negative id", `{"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{"a":-1}}}`, "out of range"},
		{"huge id", `{"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{"a":99999999}}}`, "out of range"},
		{"unknown merge", strings.Replace(valid, `"a b"`, `"a zz"`, 1), "not in the vocabulary"},
		{"merged missing", strings.Replace(valid, `"ab":256`, `"xy":256`, 1), `merged token "ab"`},
		{"bad merge", strings.Replace(valid, `"a b"`, `"a b c"`, 1), "two tokens"},
		{"normalizer", strings.Replace(valid, `"normalizer":null`, `"normalizer":{"type":"Lowercase"}`, 1), "normalizer"},
		{"replace regex", strings.Replace(valid, `"normalizer":null`, `"normalizer":{"type":"Replace","pattern":{"Regex":" +"},"content":"_"}`, 1), "String pattern"},
		{"byte fallback", strings.Replace(valid, `"type":"BPE"`, `"type":"BPE","byte_fallback":true`, 1), "byte_fallback"},
		{"literal with byte-level decoder", `{"pre_tokenizer":null,"decoder":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{"a":0}}}`, "ByteLevel"},
		{"metaspace", `{"pre_tokenizer":{"type":"Metaspace","replacement":"_"},"model":{"type":"BPE","vocab":{"a":0}}}`, "Metaspace"},
		{"unk missing", `{"pre_tokenizer":null,"model":{"type":"BPE","unk_token":"<unk>","vocab":{"a":0}}}`, "unk_token"},
		{"strip decoder", `{"decoder":{"type":"Strip","content":"x","start":1,"stop":0},"model":{"type":"BPE","vocab":{"a":0}}}`, "Strip"},
		{"lookahead", `{"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"a(?=b)"},"behavior":"Isolated"},{"type":"ByteLevel","use_regex":false}]},"model":{"type":"BPE","vocab":{"a":0}}}`, "not supported"},
		{"invert", `{"pre_tokenizer":{"type":"Split","pattern":{"Regex":"a"},"behavior":"Isolated","invert":true},"model":{"type":"BPE","vocab":{"a":0}}}`, "invert"},
		{"added conflict", strings.Replace(valid, `"added_tokens":[]`, `"added_tokens":[{"id":97,"content":"<x>","special":true}]`, 1), "vocabulary gives"},
		{"added no id", strings.Replace(valid, `"added_tokens":[]`, `"added_tokens":[{"content":"<x>"}]`, 1), "no id"},
		{"added dup", strings.Replace(valid, `"added_tokens":[]`, `"added_tokens":[{"id":300,"content":"<x>"},{"id":300,"content":"<y>"}]`, 1), "used by added tokens"},
		{"decoder", strings.Replace(valid, `"decoder":{"type":"ByteLevel"}`, `"decoder":{"type":"WordPiece"}`, 1), "decoder"},
	}
	if _, err := Parse([]byte(valid)); err != nil {
		t.Fatalf("valid document: %v", err)
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.doc))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

func TestLoadMissing(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "none.json")); err == nil {
		t.Error("Load of a missing file: got nil error")
	}
}

func TestAddedTokenFlags(t *testing.T) {
	added := []map[string]any{
		{"id": 300, "content": "<s>", "special": true},
		{"id": 301, "content": "<L>", "special": true, "lstrip": true},
		{"id": 302, "content": "<R>", "special": true, "rstrip": true},
		{"id": 303, "content": "cat", "special": false, "single_word": true},
		{"id": 304, "content": "<s><s>", "special": true},
		{"id": 305, "content": "[u]", "special": false},
	}
	tk := mustParse(t, testJSON(nil, nil, added, nil))
	bytesOf := func(s string) []int {
		var out []int
		for i := 0; i < len(s); i++ {
			out = append(out, int(s[i]))
		}
		return out
	}
	cat := func(parts ...[]int) []int { return slices.Concat(parts...) }
	tests := []struct {
		in   string
		ord  bool
		want []int
	}{
		{"<s>", false, []int{300}},
		{"<s><s>", false, []int{304}},                                  // longest match
		{"<s><s><s>", false, []int{304, 300}},                          // leftmost-longest
		{"a <L>b", false, cat(bytesOf("a"), []int{301}, bytesOf("b"))}, // lstrip eats the space
		{"a<R>  b", false, cat(bytesOf("a"), []int{302}, bytesOf("b"))},
		{"a cat b", false, cat(bytesOf("a "), []int{303}, bytesOf(" b"))},
		{"concat", false, bytesOf("concat")}, // single_word: not inside a word
		{"<s>[u]", true, cat(bytesOf("<s>"), []int{305})},
		{"x<s>y", false, cat(bytesOf("x"), []int{300}, bytesOf("y"))},
	}
	for _, tt := range tests {
		var got []int
		if tt.ord {
			got = tk.EncodeOrdinary(tt.in)
		} else {
			got = tk.Encode(tt.in)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Encode(%q, ordinary=%v) = %v, want %v", tt.in, tt.ord, got, tt.want)
		}
	}
	if got := tk.DecodeSkipSpecial([]int{300, 'h', 'i', 305, 301}); got != "hi[u]" {
		t.Errorf("DecodeSkipSpecial = %q, want %q", got, "hi[u]")
	}
	if got := tk.Decode([]int{300, -5, 1 << 30, 'x'}); got != "<s>x" {
		t.Errorf("Decode with bad ids = %q, want %q", got, "<s>x")
	}
}

func TestBPEMerges(t *testing.T) {
	// Ranks: "a b" before "b c": "abc" -> "ab" "c"; ties go leftmost.
	extra := []string{"ab", "bc", "aa", "aaaa"}
	merges := []string{"a b", "b c", "a a", "aa aa"}
	tk := mustParse(t, testJSON(extra, merges, nil, nil))
	tests := []struct {
		in   string
		want []int
	}{
		{"abc", []int{256, 'c'}},
		{"bc", []int{257}},
		{"aaa", []int{258, 'a'}},
		{"aaaaa", []int{259, 'a'}},
		{"aaaaaaaa", []int{259, 259}},
	}
	for _, tt := range tests {
		if got := tk.Encode(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("Encode(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestMergeHeapMatchesScan runs both merge strategies on long words.
func TestMergeHeapMatchesScan(t *testing.T) {
	tk := loadLlama3(t)
	text := opticksText(t)
	words := strings.Fields(text)
	for i := 0; i+8 < len(words) && i < 20000; i += 7 {
		w := strings.Join(words[i:i+8], "")
		a := tk.bpeWith(w, false)
		b := tk.bpeWith(w, true)
		if !slices.Equal(a, b) {
			t.Fatalf("word %q: scan %v, heap %v", w, a, b)
		}
	}
}

// bpeWith forces one merge strategy (for tests).
func (t *Tokenizer) bpeWith(w string, useHeap bool) []int {
	syms := make([]symbol, 0, len(w))
	for i := 0; i < len(w); i++ {
		if id := t.byteID[w[i]]; id >= 0 {
			syms = append(syms, symbol{id: id, prev: int32(len(syms)) - 1, next: int32(len(syms)) + 1})
		}
	}
	syms[len(syms)-1].next = -1
	if useHeap {
		t.mergeHeap(syms)
	} else {
		t.mergeScan(syms)
	}
	var out []int
	for i := int32(0); i >= 0; i = syms[i].next {
		out = append(out, int(syms[i].id))
	}
	return out
}

func TestPreTokenizerVariants(t *testing.T) {
	seq := func(steps ...map[string]any) map[string]any {
		return map[string]any{"type": "Sequence", "pretokenizers": steps}
	}
	split := func(re, beh string) map[string]any {
		return map[string]any{"type": "Split", "pattern": map[string]any{"Regex": re}, "behavior": beh}
	}
	bl := func(prefix, useRegex bool) map[string]any {
		return map[string]any{"type": "ByteLevel", "add_prefix_space": prefix, "use_regex": useRegex}
	}
	tests := []struct {
		name string
		pre  any
		in   string
		want []string
	}{
		{"gpt2", bl(false, true), "Hello  world's", []string{"Hello", " ", " world", "'s"}},
		{"prefix", bl(true, true), "Hello world", []string{" Hello", " world"}},
		{"digits regexp", seq(split(`\d`, "Isolated"), bl(false, false)), "ab12c", []string{"ab", "1", "2", "c"}},
		{"unicode space", seq(split(`\s+`, "Removed"), bl(false, false)), "a\u00a0b c", []string{"a", "b", "c"}},
		{"string pattern", seq(map[string]any{"type": "Split", "pattern": map[string]any{"String": "."}, "behavior": "MergedWithPrevious"}, bl(false, false)), "a.b.c", []string{"a.", "b.", "c"}},
		{"no split", bl(false, false), "a b", []string{"a b"}},
	}
	for _, tt := range tests {
		tk, err := Parse(testJSON(nil, nil, nil, tt.pre))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got := tk.pre.split(tt.in, true, nil); !slices.Equal(got, tt.want) {
			t.Errorf("%s: split(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestGGUFRoundTrip(t *testing.T) {
	for _, name := range []string{"opticks", "llama3"} {
		var tk *Tokenizer
		if name == "opticks" {
			tk = loadOpticks(t)
		} else {
			tk = loadLlama3(t)
		}
		tokens, types, merges := tk.Tokens(), tk.TokenTypes(), tk.Merges()
		if len(tokens) != tk.VocabSize() || len(types) != len(tokens) {
			t.Fatalf("%s: %d tokens, %d types, vocab %d", name, len(tokens), len(types), tk.VocabSize())
		}
		back, err := FromGGUF(tokens, types, merges, tk.PreTokenizer())
		if err != nil {
			t.Fatalf("%s: FromGGUF: %v", name, err)
		}
		if !slices.Equal(back.Tokens(), tokens) || !slices.Equal(back.Merges(), merges) || !slices.Equal(back.TokenTypes(), types) {
			t.Errorf("%s: tokens, merges or types differ after the round trip", name)
		}
		if !slices.Equal(back.AddedTokens(), tk.AddedTokens()) {
			t.Errorf("%s: added tokens differ after the round trip", name)
		}
		if back.IgnoreMerges() != tk.IgnoreMerges() {
			t.Errorf("%s: IgnoreMerges = %v, want %v", name, back.IgnoreMerges(), tk.IgnoreMerges())
		}
		text := opticksText(t)[:200000] + "<|begin_of_text|>x<|eot_id|> ok"
		if a, b := tk.Encode(text), back.Encode(text); !slices.Equal(a, b) {
			t.Errorf("%s: encodings differ after the round trip", name)
		}
	}
	if got := loadLlama3(t).TokenTypes()[128009]; got != TypeControl {
		t.Errorf("type of <|eot_id|> = %d, want %d", got, TypeControl)
	}
}

func TestFromGGUFErrors(t *testing.T) {
	tests := []struct {
		name   string
		tokens []string
		types  []int32
		merges []string
		pre    string
		want   string
	}{
		{"types length", []string{"a"}, []int32{1, 1}, nil, "", "token types"},
		{"byte type", []string{"<0x00>"}, []int32{TypeByte}, nil, "", "type 6"},
		{"dup token", []string{"a", "a"}, nil, nil, "", "has ids"},
		{"bad merge", []string{"a", "b"}, nil, []string{"ab"}, "", "two tokens"},
		{"missing merge", []string{"a", "b"}, nil, []string{"a b"}, "", "not in the vocabulary"},
		{"bad pre", []string{"a"}, nil, nil, `\s+(?!\S)x`, "neither a known name"},
	}
	for _, tt := range tests {
		_, err := FromGGUF(tt.tokens, tt.types, tt.merges, tt.pre)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
	// Unused (padding) tokens are kept but never produced.
	tk, err := FromGGUF([]string{"a", "[PAD1]", "<|x|>"}, []int32{TypeNormal, TypeUnused, TypeControl}, nil, "llama-bpe")
	if err != nil {
		t.Fatal(err)
	}
	if got := tk.Encode("a<|x|>"); !slices.Equal(got, []int{0, 2}) {
		t.Errorf("Encode = %v, want [0 2]", got)
	}
	if got := tk.TokenTypes(); !slices.Equal(got, []int32{TypeNormal, TypeUnused, TypeControl}) {
		t.Errorf("TokenTypes = %v", got)
	}
}

func TestStreamDecoder(t *testing.T) {
	tk := loadLlama3(t)
	texts := []string{
		"plain ascii", "emoji 😀😃 👨‍👩‍👧‍👦 and CJK 中文分词", "é à ü ß", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math",
		"<|begin_of_text|>with special<|eot_id|>",
	}
	for _, text := range texts {
		d := tk.NewDecoder()
		var sb strings.Builder
		for _, id := range tk.Encode(text) {
			piece := d.Add(id)
			if !utf8.ValidString(piece) {
				t.Errorf("%q: Add emitted invalid UTF-8 %q", text, piece)
			}
			sb.WriteString(piece)
		}
		sb.WriteString(d.Flush())
		if sb.String() != text {
			t.Errorf("stream decode = %q, want %q", sb.String(), text)
		}
	}
	// Byte tokens of one emoji arrive one at a time: nothing until complete.
	emoji := "😀"
	bt := tk.byteID
	d := tk.NewDecoder()
	for i := 0; i < len(emoji); i++ {
		got := d.Add(int(bt[emoji[i]]))
		want := ""
		if i == len(emoji)-1 {
			want = emoji
		}
		if got != want {
			t.Errorf("byte %d: Add = %q, want %q", i, got, want)
		}
	}
	// Invalid and truncated bytes come out as U+FFFD.
	if got := d.Add(int(bt[0xff])); got != "\uFFFD" {
		t.Errorf("Add(0xff) = %q, want U+FFFD", got)
	}
	if got := d.Add(int(bt[0xe4])); got != "" {
		t.Errorf("Add(0xe4) = %q, want held back", got)
	}
	if got := d.Add(int(bt['a'])); got != "\uFFFDa" {
		t.Errorf("Add('a') after 0xe4 = %q, want U+FFFD a", got)
	}
	d.Add(int(bt[0xf0]))
	if got := d.Flush(); got != "\uFFFD" {
		t.Errorf("Flush = %q, want U+FFFD", got)
	}
	if got := d.Flush(); got != "" {
		t.Errorf("second Flush = %q, want empty", got)
	}
	skip := tk.NewDecoder(SkipSpecial())
	if got := skip.Add(128009) + skip.Add(int(bt['x'])); got != "x" {
		t.Errorf("SkipSpecial decode = %q, want %q", got, "x")
	}
	if got := d.Add(-1) + d.Add(1<<30); got != "" {
		t.Errorf("Add(bad id) = %q, want empty", got)
	}
}

func TestConcurrentEncode(t *testing.T) {
	tk := loadOpticks(t)
	text := opticksText(t)[:50000]
	want := tk.Encode(text)
	done := make(chan []int)
	for g := 0; g < 4; g++ {
		go func() { done <- tk.Encode(text) }()
	}
	for g := 0; g < 4; g++ {
		if got := <-done; !slices.Equal(got, want) {
			t.Error("concurrent Encode gave a different result")
		}
	}
}

func ExampleTokenizer_Encode() {
	tk, err := Load("../../testdata/tokenizer/opticks-bpe600.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	ids := tk.Encode("<|begin_of_text|>the light")
	fmt.Println(ids[0], tk.Decode(ids[1:]))
	// Output: 598 the light
}

func TestBOS(t *testing.T) {
	if id, ok := loadLlama3(t).BOS(); !ok || id != 128000 {
		t.Errorf("llama3 BOS = %d, %v; want 128000", id, ok)
	}
	if id, ok := loadOpticks(t).BOS(); !ok || id != 598 {
		t.Errorf("opticks BOS = %d, %v; want 598 (by name)", id, ok)
	}
	if _, ok := mustParse(t, testJSON(nil, nil, nil, nil)).BOS(); ok {
		t.Error("BOS found in a tokenizer without one")
	}
	doc := strings.Replace(string(testJSON(nil, nil, nil, nil)), `"added_tokens":[]`,
		`"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<nope>"}}]},"added_tokens":[]`, 1)
	if _, err := Parse([]byte(doc)); err == nil || !strings.Contains(err.Error(), "<nope>") {
		t.Errorf("unknown post_processor token: got %v", err)
	}
}

// TestAddedTokenPrefixes encodes text full of partial special tokens: the
// trie keeps it linear, and the text round-trips.
func TestAddedTokenPrefixes(t *testing.T) {
	tk := loadLlama3(t)
	text := strings.Repeat("<|<|eot_<|reserved_special_token_", 5000) + "<|eot_id|>"
	ids := tk.Encode(text)
	if ids[len(ids)-1] != 128009 {
		t.Errorf("last id = %d, want 128009", ids[len(ids)-1])
	}
	if got := tk.Decode(ids); got != text {
		t.Error("round trip failed")
	}
}
