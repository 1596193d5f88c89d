package gguf

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkParseVocab parses a header shaped like a LLaMA 3 vocabulary
// (128256 tokens, 280147 merges), the bulk of a BitNet 2B4T GGUF header.
func BenchmarkParseVocab(b *testing.B) {
	tokens := make([]string, 128256)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("tok%06d", i)
	}
	merges := make([]string, 280147)
	for i := range merges {
		merges[i] = fmt.Sprintf("m%d n%d", i, i)
	}
	types := make([]int32, len(tokens))
	w := NewWriter()
	w.AddKV("tokenizer.ggml.tokens", tokens)
	w.AddKV("tokenizer.ggml.merges", merges)
	w.AddKV("tokenizer.ggml.token_type", types)
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeQ8_0(b *testing.B) {
	x := make([]float32, 1<<20)
	for i := range x {
		x[i] = float32(i%255-127) * 0.01
	}
	b.SetBytes(int64(4 * len(x)))
	for b.Loop() {
		if _, err := EncodeFloat32(Q8_0, x); err != nil {
			b.Fatal(err)
		}
	}
}
