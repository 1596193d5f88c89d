// Package tokenizer implements the BPE tokenizers that Hugging Face stores in
// tokenizer.json: byte-level ones (GPT-2, LLaMA 3 and the BitNet b1.58 2B4T
// model, Falcon3, Qwen2/Qwen3 with NFC) and SentencePiece-style ones with
// literal "▁" vocabularies and byte fallback (LLaMA 2 and 1bitLLM, Gemma 3;
// see spm.go), and their GGUF forms ("gpt2" and "llama" tokenizer models).
//
// Encoding runs in three stages, as in the tokenizers library:
//
//  1. added tokens (e.g. <|begin_of_text|>) are matched in the raw text first,
//     leftmost-longest, honouring their lstrip/rstrip/single_word flags; the
//     normalizer (NFC, Prepend, Replace) runs on each piece between them;
//  2. the text between them is pre-tokenized into words: the LLaMA 3 and
//     GPT-2 split patterns (which use a look-ahead that Go's regexp lacks) are
//     hand-written scanners that reproduce the regex's leftmost-first
//     semantics exactly; other Split patterns use Go's regexp;
//  3. every word is mapped to the GPT-2 byte-level alphabet and merged with
//     the BPE merge ranks (a word that is itself in the vocabulary is one
//     token when ignore_merges is set). Results are cached per word.
//
// Token strings are kept in raw bytes internally, so the byte-level alphabet
// only matters at the file boundary (Parse, Tokens, Merges, FromGGUF).
//
// No BOS is ever added by Encode (the tokenizer.json post_processor is not
// applied); BOS tells which token to prepend. Decode returns raw bytes;
// StreamDecoder turns a token stream into valid UTF-8 pieces without cutting
// a character.
//
// A Tokenizer is immutable after construction and safe for concurrent use.
package tokenizer
