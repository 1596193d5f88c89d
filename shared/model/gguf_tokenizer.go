package model

import (
	"fmt"
	"strings"

	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// padToken names the filler ids the converter adds when the vocabulary is
// shorter than the embedding ("[PAD<id>]", type UNUSED).
func padToken(id int) string { return fmt.Sprintf("[PAD%d]", id) }

// addTokenizerKVs writes tok as a "gpt2" (byte-level BPE) vocabulary, padded
// to the model's vocab_size like the converter does.
func addTokenizerKVs(wr *gguf.Writer, tok *tokenizer.Tokenizer, c Config) error {
	tokens := tok.Tokens()
	if len(tokens) > c.VocabSize {
		return fmt.Errorf("%w: tokenizer has %d tokens, more than vocab_size = %d", ErrConfig, len(tokens), c.VocabSize)
	}
	types := append(tok.TokenTypes(), make([]int32, c.VocabSize-len(tokens))...)
	for id := len(tokens); id < c.VocabSize; id++ {
		tokens = append(tokens, padToken(id))
		types[id] = tokenizer.TypeUnused
	}
	var kvs []gguf.KV
	if tok.Literal() {
		// SentencePiece-style vocabularies (LLaMA 2, Gemma): llama.cpp's
		// "llama" tokenizer merges by score (tokenizer.Scores).
		scores := append(tok.Scores(), make([]float32, c.VocabSize-tok.VocabSize())...)
		kvs = []gguf.KV{
			{Key: keyTokModel, Value: "llama"},
			{Key: keyTokTokens, Value: tokens},
			{Key: keyTokScores, Value: scores},
			{Key: keyTokTypes, Value: types},
			{Key: keyTokSpacePrefix, Value: tok.AddSpacePrefix()},
		}
	} else {
		kvs = []gguf.KV{
			{Key: keyTokModel, Value: "gpt2"},
			{Key: keyTokPre, Value: tok.PreTokenizer()},
			{Key: keyTokTokens, Value: tokens},
			{Key: keyTokTypes, Value: types},
			{Key: keyTokMerges, Value: tok.Merges()},
		}
	}
	if c.BOSTokenID >= 0 {
		kvs = append(kvs, gguf.KV{Key: keyTokBOS, Value: uint32(c.BOSTokenID)})
	}
	if len(c.EOSTokenIDs) > 0 {
		kvs = append(kvs, gguf.KV{Key: keyTokEOS, Value: uint32(c.EOSTokenIDs[0])})
	}
	// 2B4T (LLaMA 3) stops chat turns at <|eot_id|>; llama.cpp reads it here.
	for _, id := range c.EOSTokenIDs[min(1, len(c.EOSTokenIDs)):] {
		if id < len(tokens) && tokens[id] == "<|eot_id|>" {
			kvs = append(kvs, gguf.KV{Key: keyTokEOT, Value: uint32(id)})
		}
	}
	kvs = append(kvs,
		gguf.KV{Key: keyTokAddBOS, Value: c.BOSTokenID >= 0},
		gguf.KV{Key: keyTokAddEOS, Value: false})
	for _, kv := range kvs {
		if err := wr.AddKV(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	return nil
}

// ggufTokenizer builds the tokenizer of a file; nil when it has none.
func ggufTokenizer(f *gguf.File, vocab int) (*tokenizer.Tokenizer, error) {
	if _, ok := f.Get(keyTokModel); !ok {
		return nil, nil
	}
	model, err := f.String(keyTokModel)
	if err != nil {
		return nil, fmt.Errorf("%w: key %s: %w", ErrConfig, keyTokModel, err)
	}
	if model != "gpt2" && model != "llama" {
		return nil, fmt.Errorf("%w: %s = %q is not supported (want gpt2, byte-level BPE, or llama, SentencePiece)", ErrConfig, keyTokModel, model)
	}
	tokens, err := f.Strings(keyTokTokens)
	if err != nil {
		return nil, fmt.Errorf("%w: key %s: %w", ErrConfig, keyTokTokens, err)
	}
	if len(tokens) > vocab {
		return nil, fmt.Errorf("%w: %s has %d tokens, more than vocab_size = %d", ErrConfig, keyTokTokens, len(tokens), vocab)
	}
	var types []int32
	if _, ok := f.Get(keyTokTypes); ok {
		if types, err = f.Int32s(keyTokTypes); err != nil {
			return nil, fmt.Errorf("%w: key %s: %w", ErrConfig, keyTokTypes, err)
		}
		if len(types) != len(tokens) {
			return nil, fmt.Errorf("%w: %s has %d entries, want one per token (%d)", ErrConfig, keyTokTypes, len(types), len(tokens))
		}
	} else {
		types = make([]int32, len(tokens))
		for i := range types {
			types[i] = tokenizer.TypeNormal
		}
	}
	// Drop the converter's trailing padding so the vocabulary is the original.
	n := len(tokens)
	for n > 0 && types[n-1] == tokenizer.TypeUnused && tokens[n-1] == padToken(n-1) {
		n--
	}
	if model == "llama" {
		return ggufSPMTokenizer(f, tokens[:n], types[:n])
	}
	var merges []string
	if _, ok := f.Get(keyTokMerges); ok {
		if merges, err = f.Strings(keyTokMerges); err != nil {
			return nil, fmt.Errorf("%w: key %s: %w", ErrConfig, keyTokMerges, err)
		}
	}
	pre, err := ggufPre(f)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.FromGGUF(tokens[:n], types[:n], merges, pre)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return tok, nil
}

// ggufPre returns tokenizer.ggml.pre for tokenizer.FromGGUF: LLaMA 3's and
// GPT-2's names, or a split pattern as our writer stores it. Other llama.cpp
// names (a different pattern per model family) are errors, as is a missing
// key (llama.cpp's "default" set of patterns).
func ggufPre(f *gguf.File) (string, error) {
	if _, ok := f.Get(keyTokPre); !ok {
		return "", fmt.Errorf("%w: missing key %s (llama.cpp's default pre-tokenizer is not supported)", ErrConfig, keyTokPre)
	}
	pre, err := f.String(keyTokPre)
	if err != nil {
		return "", fmt.Errorf("%w: key %s: %w", ErrConfig, keyTokPre, err)
	}
	switch pre {
	case "llama-bpe", "llama3", "llama-v3", "falcon3":
		// llama.cpp runs Falcon3's vocabulary with LLaMA 3's pattern.
		return "llama-bpe", nil
	case "gpt-2", "qwen2":
		return pre, nil
	}
	isName := pre != "" && strings.IndexFunc(pre, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) < 0
	if isName {
		return "", fmt.Errorf("%w: %s = %q is not supported (want llama-bpe, falcon3, qwen2 or gpt-2)", ErrConfig, keyTokPre, pre)
	}
	return pre, nil
}

// ggufSPMTokenizer builds a "llama" (SentencePiece) vocabulary: its scores
// and tokenizer.ggml.add_space_prefix (default true, as in llama.cpp).
func ggufSPMTokenizer(f *gguf.File, tokens []string, types []int32) (*tokenizer.Tokenizer, error) {
	scores, err := f.Float32s(keyTokScores)
	if err != nil {
		return nil, fmt.Errorf("%w: key %s: %w", ErrConfig, keyTokScores, err)
	}
	if len(scores) < len(tokens) {
		return nil, fmt.Errorf("%w: %s has %d entries, want one per token (%d)", ErrConfig, keyTokScores, len(scores), len(tokens))
	}
	prefix := true
	if _, ok := f.Get(keyTokSpacePrefix); ok {
		if prefix, err = f.Bool(keyTokSpacePrefix); err != nil {
			return nil, fmt.Errorf("%w: key %s: %w", ErrConfig, keyTokSpacePrefix, err)
		}
	}
	tok, err := tokenizer.FromGGUFSPM(tokens, scores[:len(tokens)], types, prefix)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return tok, nil
}
