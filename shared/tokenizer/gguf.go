package tokenizer

import (
	"fmt"
	"slices"
	"strings"
)

// GGUF interop: what a llama.cpp "gpt2"-model tokenizer stores
// (tokenizer.ggml.tokens, token_type, merges, pre) and back. Written early
// for the GGUF reader/writer (helper H8); keep the signatures stable.

// GGUF token types (llama.cpp's llama_token_type).
const (
	TypeNormal      int32 = 1
	TypeUnknown     int32 = 2
	TypeControl     int32 = 3
	TypeUserDefined int32 = 4
	TypeUnused      int32 = 5
	TypeByte        int32 = 6
)

// Tokens returns every token in id order in the byte-level alphabet, as
// tokenizer.ggml.tokens stores them; ids no token uses are "[PAD<id>]" (as
// llama.cpp's converter writes them, with type TypeUnused).
func (t *Tokenizer) Tokens() []string {
	out := make([]string, len(t.tokens))
	for id := range out {
		if t.present[id] {
			out[id] = t.fileForm[id]
		} else {
			out[id] = fmt.Sprintf("[PAD%d]", id)
		}
	}
	return out
}

// TokenTypes returns the GGUF type of every token in id order: control for
// special added tokens, user-defined for other added tokens, unused for ids
// without a token, normal otherwise.
func (t *Tokenizer) TokenTypes() []int32 {
	out := make([]int32, len(t.tokens))
	for id := range out {
		out[id] = TypeNormal
		switch {
		case !t.present[id] || t.unused[id]:
			out[id] = TypeUnused
		case t.literal && t.byteFallback:
			if _, ok := byteToken(t.fileForm[id]); ok {
				out[id] = TypeByte
			}
		}
	}
	for _, a := range t.added {
		out[a.ID] = TypeUserDefined
		if a.Special {
			out[a.ID] = TypeControl
		}
	}
	if t.unk >= 0 {
		out[t.unk] = TypeUnknown
	}
	return out
}

// Merges returns the merges in rank order as "a b" in the byte-level
// alphabet (tokenizer.ggml.merges).
func (t *Tokenizer) Merges() []string {
	out := make([]string, len(t.mergeList))
	for i, p := range t.mergeList {
		out[i] = t.fileForm[p[0]] + " " + t.fileForm[p[1]]
	}
	return out
}

// AddedTokens returns the added tokens in the order of the source file.
func (t *Tokenizer) AddedTokens() []AddedToken {
	out := make([]AddedToken, len(t.added))
	for i, a := range t.added {
		out[i] = a.AddedToken
	}
	return out
}

// PreTokenizer names the pre-tokenizer for tokenizer.ggml.pre: "llama-bpe"
// for the LLaMA 3 split pattern, "gpt-2" for GPT-2's, otherwise the split
// pattern itself ("" when the text is not split).
func (t *Tokenizer) PreTokenizer() string { return t.pre.name() }

// IgnoreMerges reports whether a word that is a vocabulary token is kept
// whole (tokenizer.json model.ignore_merges).
func (t *Tokenizer) IgnoreMerges() bool { return t.ignoreMerges }

// FromGGUF builds a tokenizer from GGUF "gpt2" tokenizer metadata: tokens in
// id order (byte-level alphabet), their types (nil means all normal; control
// tokens become special added tokens, user-defined ones non-special added
// tokens, unused ones are kept but never produced), merges "a b" in rank
// order, and tokenizer.ggml.pre: "llama-bpe" (LLaMA 3, with ignore_merges as
// llama.cpp applies it), "gpt-2", "" (no split) or a split regex.
func FromGGUF(tokens []string, tokenTypes []int32, merges []string, pre string) (*Tokenizer, error) {
	if len(tokens) > MaxVocab {
		return nil, fmt.Errorf("gguf tokenizer: %d tokens, more than %d", len(tokens), MaxVocab)
	}
	if tokenTypes != nil && len(tokenTypes) != len(tokens) {
		return nil, fmt.Errorf("gguf tokenizer: %d token types for %d tokens", len(tokenTypes), len(tokens))
	}
	b := newBuilder()
	for id, s := range tokens {
		typ := TypeNormal
		if tokenTypes != nil {
			typ = tokenTypes[id]
		}
		var err error
		switch typ {
		case TypeNormal, TypeUnknown:
			err = b.addModel(id, s)
		case TypeUnused:
			err = b.addModel(id, s)
			b.unused[id] = true
		case TypeControl, TypeUserDefined:
			err = b.addAdded(addedToken{AddedToken: AddedToken{ID: id, Content: s, Special: typ == TypeControl}})
		default:
			err = fmt.Errorf("token %d %q: type %d is not supported by byte-level BPE", id, truncate(s, 40), typ)
		}
		if err != nil {
			return nil, fmt.Errorf("gguf tokenizer: %w", err)
		}
	}
	pairs := make([][2]string, len(merges))
	for i, m := range merges {
		a, c, ok := strings.Cut(m, " ")
		if !ok || strings.Contains(c, " ") {
			return nil, fmt.Errorf("gguf tokenizer: merge %d %q: want two tokens separated by one space", i, truncate(m, 40))
		}
		pairs[i] = [2]string{a, c}
	}
	var p preTokenizer
	ignoreMerges := false
	switch pre {
	case "":
	case PreLlama3, "llama3":
		st, _ := newSplitStage(Llama3Pattern, behIsolated)
		p.stages = []stage{st}
		ignoreMerges = true
	case PreGPT2:
		st, _ := newSplitStage(GPT2Pattern, behIsolated)
		p.stages = []stage{st}
	case PreQwen2:
		st, _ := newSplitStage(QwenPattern, behIsolated)
		p.stages = []stage{st}
	default:
		st, err := newSplitStage(pre, behIsolated)
		if err != nil {
			return nil, fmt.Errorf("gguf tokenizer: pre %q is neither a known name (llama-bpe, gpt-2) nor a supported pattern: %w", truncate(pre, 60), err)
		}
		p.stages = []stage{st}
	}
	t, err := b.build(pairs, nil, ignoreMerges, p)
	if err != nil {
		return nil, fmt.Errorf("gguf tokenizer: %w", err)
	}
	if pre == PreQwen2 {
		t.norm = normalizer{{kind: normNFC}} // Qwen's tokenizer.json normalizer
	}
	return t, nil
}

// Literal reports whether the vocabulary is SentencePiece-style text ("▁"
// for spaces, <0xXX> byte tokens), which GGUF stores as the "llama" (SPM)
// tokenizer model, rather than GPT-2's byte-level alphabet ("gpt2").
func (t *Tokenizer) Literal() bool { return t.literal }

// AddSpacePrefix reports whether a "▁" is put before the text (LLaMA 2's
// Prepend normalizer or Metaspace's prepend scheme), as GGUF's
// tokenizer.ggml.add_space_prefix says.
func (t *Tokenizer) AddSpacePrefix() bool {
	for _, st := range t.norm {
		if st.kind == normPrepend && st.a == Metaspace {
			return true
		}
	}
	for _, st := range t.pre.stages {
		if st.meta != nil && st.meta.prepend != metaNever {
			return true
		}
	}
	return false
}

// FromGGUFSPM builds a tokenizer from GGUF "llama" (SentencePiece) tokenizer
// metadata, as llama.cpp runs it: tokens in id order ("▁" for spaces,
// <0xXX> byte tokens of type TypeByte), their scores and types, and
// tokenizer.ggml.add_space_prefix. Spaces become "▁" and, with
// addSpacePrefix, one "▁" starts the text and every piece after an added
// token; the pairs of adjacent tokens whose concatenation is a token merge
// highest score first, leftmost first among equal scores; characters left
// without a token become their byte tokens (or the unknown token).
func FromGGUFSPM(tokens []string, scores []float32, tokenTypes []int32, addSpacePrefix bool) (*Tokenizer, error) {
	if len(tokens) > MaxVocab {
		return nil, fmt.Errorf("gguf tokenizer: %d tokens, more than %d", len(tokens), MaxVocab)
	}
	if tokenTypes != nil && len(tokenTypes) != len(tokens) {
		return nil, fmt.Errorf("gguf tokenizer: %d token types for %d tokens", len(tokenTypes), len(tokens))
	}
	if len(scores) != len(tokens) {
		return nil, fmt.Errorf("gguf tokenizer: %d scores for %d tokens", len(scores), len(tokens))
	}
	b := newBuilder()
	b.literal = true
	b.dec = decoderSpec{metaspace: true, byteFallback: true}
	if addSpacePrefix {
		b.dec.stripStart = 1
	}
	unk := -1
	for id, s := range tokens {
		typ := TypeNormal
		if tokenTypes != nil {
			typ = tokenTypes[id]
		}
		var err error
		switch typ {
		case TypeUnknown:
			// Also matched in the text as a special token, as llama.cpp does.
			if err = b.addModel(id, s); err == nil {
				err = b.addAdded(addedToken{AddedToken: AddedToken{ID: id, Content: s, Special: true}})
			}
			if unk < 0 {
				unk = id
			}
		case TypeNormal, TypeByte:
			err = b.addModel(id, s)
			if _, ok := byteToken(s); typ == TypeByte && !ok {
				err = fmt.Errorf("byte token %d %q is not <0xXX>", id, truncate(s, 40))
			}
		case TypeUnused:
			err = b.addModel(id, s)
			b.unused[id] = true
		case TypeControl:
			err = b.addAdded(addedToken{AddedToken: AddedToken{ID: id, Content: s, Special: true}})
		case TypeUserDefined:
			// Matched in the text, and a token merges can make (llama.cpp
			// looks every token up), as Gemma's "▁▁" runs are.
			if err = b.addModel(id, s); err == nil {
				err = b.addAdded(addedToken{AddedToken: AddedToken{ID: id, Content: s}})
			}
		default:
			err = fmt.Errorf("token %d %q: type %d is not supported", id, truncate(s, 40), typ)
		}
		if err != nil {
			return nil, fmt.Errorf("gguf tokenizer: %w", err)
		}
	}
	pairs, ranks := spmMerges(tokens, scores, tokenTypes)
	t, err := b.build(pairs, ranks, false, preTokenizer{})
	if err != nil {
		return nil, fmt.Errorf("gguf tokenizer: %w", err)
	}
	t.byteFallback = true
	t.unk = int32(unk)
	t.norm = normalizer{{kind: normReplace, a: " ", b: Metaspace}}
	if addSpacePrefix {
		t.norm = append(normalizer{{kind: normPrepend, a: Metaspace}}, t.norm...)
	}
	return t, nil
}

// spmMerges derives BPE merges from SentencePiece scores: every split of a
// normal token into two normal tokens merges into it, ranked by the token's
// score, highest first, equal scores sharing a rank. User-defined tokens
// take part like normal ones.
func spmMerges(tokens []string, scores []float32, types []int32) ([][2]string, []int32) {
	normal := func(id int) bool { return types == nil || types[id] == TypeNormal || types[id] == TypeUserDefined }
	ids := make(map[string]int, len(tokens))
	for id, s := range tokens {
		if normal(id) {
			ids[s] = id
		}
	}
	type cand struct {
		a, b  string
		score float32
		id    int
	}
	var cs []cand
	for id, s := range tokens {
		if !normal(id) || !(scores[id] == scores[id]) { // skip NaN scores
			continue
		}
		for k := range s {
			if k == 0 {
				continue
			}
			if _, ok := ids[s[:k]]; !ok {
				continue
			}
			if _, ok := ids[s[k:]]; ok {
				cs = append(cs, cand{s[:k], s[k:], scores[id], id})
			}
		}
	}
	slices.SortStableFunc(cs, func(x, y cand) int {
		switch {
		case x.score > y.score:
			return -1
		case x.score < y.score:
			return 1
		}
		return x.id - y.id
	})
	pairs := make([][2]string, len(cs))
	ranks := make([]int32, len(cs))
	r := int32(0)
	for i, c := range cs {
		if i > 0 && c.score != cs[i-1].score {
			r = int32(i)
		}
		pairs[i], ranks[i] = [2]string{c.a, c.b}, r
	}
	return pairs, ranks
}
