package train

import (
	"bytes"
	"context"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// FuzzTokenizeJSONL feeds arbitrary bytes to the JSONL reader: it must
// return an error or ids inside the vocabulary, never panic.
func FuzzTokenizeJSONL(f *testing.F) {
	f.Add([]byte("{\"text\": \"Of Light\"}\n{\"text\": \"\"}\n"))
	f.Add([]byte("{\"text\": null}\n"))
	tok, err := tokenizer.Load(testTokenizer)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 { // per-input cost bound
			return
		}
		var ids []int
		err := tokenizeJSONL(context.Background(), bytes.NewReader(data), tok, 5, func(b []int) error {
			ids = append(ids, b...)
			return nil
		})
		if err != nil {
			return
		}
		for _, id := range ids {
			if id < 0 || id >= tok.VocabSize() {
				t.Fatalf("id %d out of range [0,%d)", id, tok.VocabSize())
			}
		}
	})
}
