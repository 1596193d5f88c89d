// Package tokenizer implements the byte-level BPE tokenizers that Hugging Face
// stores in tokenizer.json (GPT-2, LLaMA 3 and the BitNet b1.58 2B4T model).
//
// Encoding runs in three stages, as in the tokenizers library:
//
//  1. added tokens (e.g. <|begin_of_text|>) are matched in the raw text first,
//     leftmost-longest, honouring their lstrip/rstrip/single_word flags;
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
