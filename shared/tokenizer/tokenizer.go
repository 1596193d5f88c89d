package tokenizer

import (
	"strings"
	"sync"
)

// AddedToken is a token matched in the raw text before pre-tokenization
// (tokenizer.json "added_tokens"; GGUF control and user-defined tokens).
type AddedToken struct {
	ID      int
	Content string
	// Special tokens (control tokens such as <|eot_id|>) are matched by
	// Encode but not by EncodeOrdinary.
	Special bool
}

// addedToken carries the matching flags of an added token.
type addedToken struct {
	AddedToken
	lstrip, rstrip, singleWord bool
}

// Tokenizer is a byte-level BPE tokenizer. It is immutable and safe for
// concurrent use.
type Tokenizer struct {
	// tokens[id] is the raw byte string of a model token or the content of
	// an added token; present[id] is false for ids that no token uses.
	tokens  []string
	present []bool
	// fileForm[id] is the token as files store it (byte-level alphabet for
	// model tokens), for Tokens() and Merges().
	fileForm []string
	special  []bool // id is a special added token
	unused   []bool // GGUF unused (padding) token: kept, never produced

	vocab  map[string]int // raw bytes -> id, model tokens only
	byteID [256]int32     // id of each single-byte token, -1 if none
	merges map[uint64]merge
	// mergeList is the merges in rank order as pairs of ids.
	mergeList    [][2]int32
	ignoreMerges bool

	added       []addedToken
	addedByText map[string]int
	matcher     addedMatcher
	norm        normalizer
	pre         preTokenizer

	// Literal (SentencePiece-style) vocabularies: tokens are text with "▁"
	// for spaces and <0xXX> byte tokens, not GPT-2's byte-level alphabet
	// (see spm.go). byteID then holds the <0xXX> tokens.
	literal      bool
	byteFallback bool
	unk          int32 // unknown token, -1 if none
	fuseUnk      bool
	stripStart   int // leading spaces Decode removes (LLaMA 2's Strip decoder)

	bos int // from the post_processor template, -1 if none

	cache wordCache
}

// BOS returns the beginning-of-sequence token: the one the tokenizer.json
// post_processor template puts first, else <|begin_of_text|> or <s> when
// present.
func (t *Tokenizer) BOS() (int, bool) {
	if t.bos >= 0 {
		return t.bos, true
	}
	for _, name := range []string{"<|begin_of_text|>", "<s>"} {
		if id, ok := t.addedByText[name]; ok {
			return id, true
		}
	}
	return -1, false
}

// merge is the result of merging a pair of tokens.
type merge struct {
	rank int32
	id   int32
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// VocabSize returns the number of token ids (the largest id + 1).
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// TokenID returns the id of a token given as its text (raw bytes for model
// tokens, the content for added tokens).
func (t *Tokenizer) TokenID(s string) (int, bool) {
	if id, ok := t.addedByText[s]; ok {
		return id, true
	}
	id, ok := t.vocab[s]
	return id, ok
}

// Token returns the text of token id (raw bytes, which may be part of a UTF-8
// character, or the content of an added token).
func (t *Tokenizer) Token(id int) (string, bool) {
	if id < 0 || id >= len(t.tokens) || !t.present[id] {
		return "", false
	}
	return t.tokens[id], true
}

// IsSpecial reports whether id is a special (control) added token.
func (t *Tokenizer) IsSpecial(id int) bool {
	return id >= 0 && id < len(t.special) && t.special[id]
}

// Encode tokenizes text, recognising every added token (special or not) in
// it. No BOS is added.
func (t *Tokenizer) Encode(text string) []int {
	return t.encode(text, true, nil)
}

// EncodeOrdinary tokenizes text treating special tokens as plain text (their
// characters are tokenized like any other); non-special added tokens are
// still recognised, as the tokenizers library always does.
func (t *Tokenizer) EncodeOrdinary(text string) []int {
	return t.encode(text, false, nil)
}

// AppendEncode is Encode appending to dst (special tokens recognised when
// special is set), for callers that reuse buffers.
func (t *Tokenizer) AppendEncode(dst []int, text string, special bool) []int {
	return t.encode(text, special, dst)
}

func (t *Tokenizer) encode(text string, special bool, out []int) []int {
	if out == nil {
		out = make([]int, 0, len(text)/3+1)
	}
	var words []string
	emit := func(seg string, first bool) {
		if len(t.norm) > 0 {
			seg = t.norm.apply(seg)
		}
		words = t.pre.split(seg, first, words[:0])
		for _, w := range words {
			out = t.encodeWord(w, out)
		}
	}
	if len(t.added) == 0 {
		emit(text, true)
		return out
	}
	pos := 0
	for pos < len(text) {
		m, ok := t.matcher.find(text, pos, special)
		if !ok {
			break
		}
		if m.start > pos {
			emit(text[pos:m.start], pos == 0)
		}
		out = append(out, m.id)
		pos = m.end
	}
	if pos < len(text) {
		emit(text[pos:], pos == 0)
	}
	return out
}

// encodeWord appends the BPE tokens of one pre-tokenized word.
func (t *Tokenizer) encodeWord(w string, out []int) []int {
	if len(w) == 1 && !t.literal {
		if id := t.byteID[w[0]]; id >= 0 {
			return append(out, int(id))
		}
		return out
	}
	if t.ignoreMerges {
		if id, ok := t.vocab[w]; ok {
			return append(out, id)
		}
	}
	if ids, ok := t.cache.get(w); ok {
		return append(out, ids...)
	}
	start := len(out)
	if t.literal {
		out = t.bpeLiteral(w, out)
	} else {
		out = t.bpe(w, out)
	}
	t.cache.put(w, out[start:])
	return out
}

// Decode returns the text of ids: the raw bytes of model tokens and the
// content of added tokens, concatenated, less the leading spaces a Strip
// decoder removes (LLaMA 2). The result may be invalid UTF-8 when ids end
// inside a character; ids out of range are skipped.
func (t *Tokenizer) Decode(ids []int) string { return t.decode(ids, false) }

// DecodeSkipSpecial is Decode without special tokens.
func (t *Tokenizer) DecodeSkipSpecial(ids []int) string { return t.decode(ids, true) }

func (t *Tokenizer) decode(ids []int, skipSpecial bool) string {
	var sb strings.Builder
	for _, id := range ids {
		if skipSpecial && t.IsSpecial(id) {
			continue
		}
		if s, ok := t.Token(id); ok {
			sb.WriteString(s)
		}
	}
	return t.strip(sb.String())
}

// strip removes the leading spaces of a decoded text that the tokenizer's
// decoder strips (at most stripStart).
func (t *Tokenizer) strip(s string) string {
	for k := 0; k < t.stripStart && strings.HasPrefix(s, " "); k++ {
		s = s[1:]
	}
	return s
}

// wordCache memoizes the BPE of words. It is bounded: when full it is
// cleared, which keeps memory flat on adversarial input.
type wordCache struct {
	mu sync.RWMutex
	m  map[string][]int
}

const wordCacheMax = 1 << 16

func (c *wordCache) get(w string) ([]int, bool) {
	c.mu.RLock()
	ids, ok := c.m[w]
	c.mu.RUnlock()
	return ids, ok
}

func (c *wordCache) put(w string, ids []int) {
	if len(w) > 256 {
		return // long words are rare and would bloat the cache
	}
	cp := append([]int(nil), ids...)
	key := strings.Clone(w) // w may point into a large caller string
	c.mu.Lock()
	if c.m == nil || len(c.m) >= wordCacheMax {
		c.m = make(map[string][]int, 1024)
	}
	c.m[key] = cp
	c.mu.Unlock()
}
