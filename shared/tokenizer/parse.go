package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// MaxVocab bounds token ids so that a corrupt file cannot make Parse allocate
// without limit.
const MaxVocab = 1 << 22

// Load reads a Hugging Face tokenizer.json.
func Load(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer %s: %w", path, err)
	}
	return t, nil
}

// tokenizerJSON is the subset of tokenizer.json that byte-level BPE uses.
// The post_processor is not applied (callers add BOS explicitly); it only
// tells which token is BOS.
type tokenizerJSON struct {
	AddedTokens   []addedJSON     `json:"added_tokens"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         modelJSON       `json:"model"`
}

type addedJSON struct {
	ID         *int   `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	Lstrip     bool   `json:"lstrip"`
	Rstrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

type modelJSON struct {
	Type                    string          `json:"type"`
	UnkToken                *string         `json:"unk_token"`
	FuseUnk                 bool            `json:"fuse_unk"`
	Dropout                 *float64        `json:"dropout"`
	ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
	ByteFallback            bool            `json:"byte_fallback"`
	IgnoreMerges            bool            `json:"ignore_merges"`
	Vocab                   map[string]int  `json:"vocab"`
	Merges                  json.RawMessage `json:"merges"`
}

type componentJSON struct {
	Type           string            `json:"type"`
	Pretokenizers  []json.RawMessage `json:"pretokenizers"`
	Decoders       []json.RawMessage `json:"decoders"`
	Normalizers    []json.RawMessage `json:"normalizers"`
	AddPrefixSpace bool              `json:"add_prefix_space"`
	UseRegex       *bool             `json:"use_regex"`
	Pattern        struct {
		Regex  *string `json:"Regex"`
		String *string `json:"String"`
	} `json:"pattern"`
	Behavior string `json:"behavior"`
	Invert   bool   `json:"invert"`
	// Metaspace
	Replacement   string `json:"replacement"`
	PrependScheme string `json:"prepend_scheme"`
	Split         *bool  `json:"split"`
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// Parse reads a tokenizer.json document and validates it: a BPE model over
// the byte-level alphabet, ids in [0, MaxVocab) and unique, merges of known
// tokens, and supported pre-tokenizers.
func Parse(data []byte) (*Tokenizer, error) {
	var f tokenizerJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse tokenizer.json: %w", err)
	}
	m := &f.Model
	switch {
	case m.Type != "BPE" && m.Type != "":
		return nil, fmt.Errorf("model.type %q is not supported (want BPE)", m.Type)
	case m.Vocab == nil:
		return nil, fmt.Errorf("model.vocab is missing")
	case m.Dropout != nil && *m.Dropout > 0:
		return nil, fmt.Errorf("model.dropout %v is not supported", *m.Dropout)
	case m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "":
		return nil, fmt.Errorf("model.continuing_subword_prefix %q is not supported", *m.ContinuingSubwordPrefix)
	case m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "":
		return nil, fmt.Errorf("model.end_of_word_suffix %q is not supported", *m.EndOfWordSuffix)
	}
	var norm normalizer
	if !isNull(f.Normalizer) {
		var n componentJSON
		if err := json.Unmarshal(f.Normalizer, &n); err != nil {
			return nil, fmt.Errorf("normalizer: %w", err)
		}
		var err error
		if norm, err = parseNormalizer(n, f.Normalizer); err != nil {
			return nil, fmt.Errorf("normalizer: %w", err)
		}
	}
	pre, byteLevel, err := parsePre(f.PreTokenizer)
	if err != nil {
		return nil, fmt.Errorf("pre_tokenizer: %w", err)
	}
	var dec decoderSpec
	if err := parseDecoder(f.Decoder, &dec); err != nil {
		return nil, fmt.Errorf("decoder: %w", err)
	}
	// Byte-level BPE (GPT-2, LLaMA 3, Qwen) maps text to its byte alphabet in
	// the pre-tokenizer; without that step the vocabulary is literal text
	// (SentencePiece style: LLaMA 2, Gemma).
	switch {
	case byteLevel && m.ByteFallback:
		return nil, fmt.Errorf("model.byte_fallback with a ByteLevel pre-tokenizer is not supported")
	case byteLevel && (dec.metaspace || dec.byteFallback):
		return nil, fmt.Errorf("decoder: a ByteLevel pre-tokenizer needs the ByteLevel decoder")
	case !byteLevel && dec.byteLevel:
		return nil, fmt.Errorf("decoder: ByteLevel without a ByteLevel pre-tokenizer")
	}

	b := newBuilder()
	b.literal, b.dec = !byteLevel, dec
	for s, id := range m.Vocab {
		if err := b.addModel(id, s); err != nil {
			return nil, fmt.Errorf("model.vocab: %w", err)
		}
	}
	for i, a := range f.AddedTokens {
		if a.ID == nil {
			return nil, fmt.Errorf("added_tokens[%d] %q: no id", i, a.Content)
		}
		at := addedToken{AddedToken: AddedToken{ID: *a.ID, Content: a.Content, Special: a.Special},
			lstrip: a.Lstrip, rstrip: a.Rstrip, singleWord: a.SingleWord}
		if err := b.addAdded(at); err != nil {
			return nil, fmt.Errorf("added_tokens[%d]: %w", i, err)
		}
	}
	pairs, err := parseMerges(m.Merges)
	if err != nil {
		return nil, err
	}
	t, err := b.build(pairs, nil, m.IgnoreMerges, pre)
	if err != nil {
		return nil, err
	}
	t.norm = norm
	t.byteFallback = m.ByteFallback
	t.fuseUnk = m.FuseUnk
	if m.UnkToken != nil && *m.UnkToken != "" {
		id, ok := t.TokenID(*m.UnkToken)
		if !ok {
			return nil, fmt.Errorf("model.unk_token %q is not in the vocabulary", truncate(*m.UnkToken, 40))
		}
		t.unk = int32(id)
	}
	t.bos = -1
	if name := templateBOS(f.PostProcessor); name != "" {
		id, ok := t.TokenID(name)
		if !ok {
			return nil, fmt.Errorf("post_processor: special token %q is not in the vocabulary", name)
		}
		t.bos = id
	}
	return t, nil
}

// templateBOS returns the special token that a TemplateProcessing
// post_processor puts before a single sequence, or "".
func templateBOS(raw json.RawMessage) string {
	if isNull(raw) {
		return ""
	}
	var pp struct {
		Type   string `json:"type"`
		Single []struct {
			SpecialToken *struct {
				ID string `json:"id"`
			} `json:"SpecialToken"`
		} `json:"single"`
		Processors []json.RawMessage `json:"processors"`
	}
	if json.Unmarshal(raw, &pp) != nil {
		return ""
	}
	switch pp.Type {
	case "TemplateProcessing":
		if len(pp.Single) > 0 && pp.Single[0].SpecialToken != nil {
			return pp.Single[0].SpecialToken.ID
		}
	case "Sequence":
		for _, p := range pp.Processors {
			if name := templateBOS(p); name != "" {
				return name
			}
		}
	}
	return ""
}

// parseMerges decodes model.merges in one pass when every merge has the same
// form ("a b" strings, or ["a", "b"] pairs: Gemma 3 has half a million), and
// merge by merge otherwise, for the error's position.
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var strs []string
	if json.Unmarshal(raw, &strs) == nil {
		pairs := make([][2]string, len(strs))
		for i, s := range strs {
			a, b, ok := strings.Cut(s, " ")
			if !ok || strings.Contains(b, " ") {
				return nil, fmt.Errorf("model.merges[%d]: merge %q: want two tokens separated by one space", i, truncate(s, 40))
			}
			pairs[i] = [2]string{a, b}
		}
		return pairs, nil
	}
	var arrs [][]string
	if json.Unmarshal(raw, &arrs) == nil {
		pairs := make([][2]string, len(arrs))
		for i, a := range arrs {
			if len(a) != 2 {
				return nil, fmt.Errorf("model.merges[%d]: want \"a b\" or [\"a\", \"b\"]", i)
			}
			pairs[i] = [2]string{a[0], a[1]}
		}
		return pairs, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("model.merges: %w", err)
	}
	pairs := make([][2]string, len(items))
	for i, it := range items {
		p, err := parseMerge(it)
		if err != nil {
			return nil, fmt.Errorf("model.merges[%d]: %w", i, err)
		}
		pairs[i] = p
	}
	return pairs, nil
}

// parseMerge accepts both merge forms: "a b" and ["a", "b"].
func parseMerge(raw json.RawMessage) ([2]string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		parts := strings.Split(s, " ")
		if len(parts) != 2 {
			return [2]string{}, fmt.Errorf("merge %q: want two tokens separated by one space", s)
		}
		return [2]string{parts[0], parts[1]}, nil
	}
	var arr []string
	if err := json.Unmarshal(raw, &arr); err != nil || len(arr) != 2 {
		return [2]string{}, fmt.Errorf("merge %s: want \"a b\" or [\"a\", \"b\"]", truncate(string(raw), 40))
	}
	return [2]string{arr[0], arr[1]}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// parsePre converts the pre_tokenizer; byteLevel reports whether a ByteLevel
// step (which maps text to the byte alphabet) is present.
func parsePre(raw json.RawMessage) (pre preTokenizer, byteLevel bool, err error) {
	if isNull(raw) {
		return pre, false, nil
	}
	var c componentJSON
	if err := json.Unmarshal(raw, &c); err != nil {
		return pre, false, err
	}
	switch c.Type {
	case "Sequence":
		for i, sub := range c.Pretokenizers {
			p, bl, err := parsePre(sub)
			if err != nil {
				return pre, false, fmt.Errorf("pretokenizers[%d]: %w", i, err)
			}
			pre.stages = append(pre.stages, p.stages...)
			byteLevel = byteLevel || bl
		}
		return pre, byteLevel, nil
	case "ByteLevel":
		if c.AddPrefixSpace {
			pre.stages = append(pre.stages, stage{prefixSpace: true})
		}
		if c.UseRegex == nil || *c.UseRegex {
			st, _ := newSplitStage(GPT2Pattern, behIsolated)
			pre.stages = append(pre.stages, st)
		}
		return pre, true, nil
	case "Split":
		if c.Invert {
			return pre, false, fmt.Errorf("split with invert is not supported")
		}
		beh, ok := behaviors[c.Behavior]
		if !ok {
			return pre, false, fmt.Errorf("split behavior %q is not supported", c.Behavior)
		}
		var st stage
		switch {
		case c.Pattern.Regex != nil:
			st, err = newSplitStage(*c.Pattern.Regex, beh)
		case c.Pattern.String != nil && *c.Pattern.String != "":
			st, err = newSplitStage(regexpQuote(*c.Pattern.String), beh)
		default:
			err = fmt.Errorf("split without a pattern")
		}
		if err != nil {
			return pre, false, err
		}
		pre.stages = append(pre.stages, st)
		return pre, false, nil
	}
	if c.Type == "Metaspace" {
		if c.Replacement != Metaspace {
			return pre, false, fmt.Errorf("Metaspace replacement %q is not supported (want %q)", c.Replacement, Metaspace)
		}
		ms := metaspaceStage{prepend: metaAlways, split: c.Split == nil || *c.Split}
		switch c.PrependScheme {
		case "", "always":
			if !c.AddPrefixSpace && c.PrependScheme == "" && hasKey(raw, "add_prefix_space") {
				ms.prepend = metaNever
			}
		case "first":
			ms.prepend = metaFirst
		case "never":
			ms.prepend = metaNever
		default:
			return pre, false, fmt.Errorf("Metaspace prepend_scheme %q is not supported", c.PrependScheme)
		}
		pre.stages = append(pre.stages, stage{meta: &ms})
		return pre, false, nil
	}
	return pre, false, fmt.Errorf("type %q is not supported (want Sequence, Split, ByteLevel or Metaspace)", c.Type)
}

// hasKey reports whether the JSON object raw has key.
func hasKey(raw json.RawMessage, key string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return false
	}
	_, ok := m[key]
	return ok
}
