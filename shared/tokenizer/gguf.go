package tokenizer

import (
	"fmt"
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
		if !t.present[id] || t.unused[id] {
			out[id] = TypeUnused
		}
	}
	for _, a := range t.added {
		out[a.ID] = TypeUserDefined
		if a.Special {
			out[a.ID] = TypeControl
		}
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
	default:
		st, err := newSplitStage(pre, behIsolated)
		if err != nil {
			return nil, fmt.Errorf("gguf tokenizer: pre %q is neither a known name (llama-bpe, gpt-2) nor a supported pattern: %w", truncate(pre, 60), err)
		}
		p.stages = []stage{st}
	}
	t, err := b.build(pairs, ignoreMerges, p)
	if err != nil {
		return nil, fmt.Errorf("gguf tokenizer: %w", err)
	}
	return t, nil
}
