package tokenizer

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func scanAll(next func(string, int) int, s string) []string {
	var out []string
	for i := 0; i < len(s); {
		e := next(s, i)
		if e <= i || e > len(s) {
			return append(out, "<no progress>")
		}
		out = append(out, s[i:e])
		i = e
	}
	return out
}

// TestScannersMatchRegex compares the hand-written scanners with the splits
// of a backtracking regex engine (JavaScript's, see tools/llama3-tokenizer)
// on 3000 random strings.
func TestScannersMatchRegex(t *testing.T) {
	var vecs []struct {
		Text   string   `json:"text"`
		Llama3 []string `json:"llama3"`
		GPT2   []string `json:"gpt2"`
	}
	if err := json.Unmarshal(readGzip(t, "split-vectors.json.gz"), &vecs); err != nil {
		t.Fatal(err)
	}
	fails := 0
	for _, v := range vecs {
		if got := scanAll(nextLlama3, v.Text); !slices.Equal(got, v.Llama3) {
			fails++
			if fails < 10 {
				t.Errorf("llama3 split(%q):\n got %q\nwant %q", v.Text, got, v.Llama3)
			}
		}
		if got := scanAll(nextGPT2, v.Text); !slices.Equal(got, v.GPT2) {
			fails++
			if fails < 10 {
				t.Errorf("gpt2 split(%q):\n got %q\nwant %q", v.Text, got, v.GPT2)
			}
		}
	}
	if fails > 0 {
		t.Errorf("%d of %d splits differ", fails, 2*len(vecs))
	}
}

func TestLlama3Split(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"Hello world", []string{"Hello", " world"}},
		{"it's", []string{"it", "'s"}},
		{"IT'S", []string{"IT", "'S"}},
		{"it\u017fs'\u017f", []string{"it\u017fs", "'\u017f"}}, // (?i) folds ſ to s
		{"12345", []string{"123", "45"}},
		{"a  b", []string{"a", " ", " b"}},
		{"a \n\n b", []string{"a", " \n\n", " b"}},
		{"x   ", []string{"x", "   "}},
		{"!!\n\nx", []string{"!!\n\n", "x"}},
		{" !x", []string{" !", "x"}},
		{"(word", []string{"(word"}},
		{"\xff\xfeab", []string{"\xff\xfe", "ab"}}, // invalid UTF-8: one-byte "other" characters
		{"\u00a0\u00a0x", []string{"\u00a0", "\u00a0x"}},
		{"\t\tx", []string{"\t", "\tx"}},
	}
	for _, tt := range tests {
		if got := scanAll(nextLlama3, tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("split(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTranslatePattern(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{`\s+`, `[` + onigSpace + `]+`, false},
		{`[^\s\p{L}]`, `[^` + onigSpace + `\p{L}]`, false},
		{`\S\d`, `[^` + onigSpace + `][` + onigDigit + `]`, false},
		{`[\S]`, ``, true},
		{`[]\s]`, `[]` + onigSpace + `]`, false},
		{`\\s`, `\\s`, false},
		{`[[:alpha:]\s]`, `[[:alpha:]` + onigSpace + `]`, false},
	}
	for _, tt := range tests {
		got, err := translatePattern(tt.in)
		if (err != nil) != tt.err || (!tt.err && got != tt.want) {
			t.Errorf("translatePattern(%q) = %q, %v; want %q, err %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestSplitSpans(t *testing.T) {
	s := "a--b-"
	spans := [][]int{{1, 2}, {2, 3}, {4, 5}}
	tests := []struct {
		beh  int
		want []string
	}{
		{behIsolated, []string{"a", "-", "-", "b", "-"}},
		{behRemoved, []string{"a", "b"}},
		{behMergedWithPrevious, []string{"a-", "-", "b-"}},
		{behMergedWithNext, []string{"a", "-", "-b", "-"}},
		{behContiguous, []string{"a", "--", "b", "-"}},
	}
	for _, tt := range tests {
		if got := splitSpans(s, spans, tt.beh, nil); !slices.Equal(got, tt.want) {
			t.Errorf("behavior %d: got %q, want %q", tt.beh, got, tt.want)
		}
	}
}

func TestPossessiveLlama3Alias(t *testing.T) {
	alias := strings.Replace(Llama3Pattern, `]?\p{L}+`, `]?+\p{L}+`, 1)
	alias = strings.Replace(alias, `]+[\r\n]*`, `]++[\r\n]*`, 1)
	if alias == Llama3Pattern {
		t.Fatal("alias construction failed")
	}
	st, err := newSplitStage(alias, behIsolated)
	if err != nil {
		t.Fatal(err)
	}
	if st.next == nil {
		t.Error("possessive LLaMA 3 pattern did not get the scanner")
	}
	p := preTokenizer{stages: []stage{st}}
	if got := p.name(); got != PreLlama3 {
		t.Errorf("name = %q, want %q", got, PreLlama3)
	}
}
