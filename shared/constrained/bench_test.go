package constrained

import (
	"compress/gzip"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

var (
	llama3Once  sync.Once
	llama3Vocab *Vocab
)

// llama3 is the real LLaMA 3 vocabulary (128,256 tokens, BitNet b1.58
// 2B4T's).
func llama3(b *testing.B) *Vocab {
	llama3Once.Do(func() {
		f, err := os.Open("../../testdata/tokenizer/llama3.json.gz")
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			b.Fatal(err)
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			b.Fatal(err)
		}
		tok, err := tokenizer.Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		llama3Vocab = VocabOf(tok, 128256)
	})
	return llama3Vocab
}

const benchSchema = `{"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}, "bio": {"type": "string", "maxLength": 200}}, "required": ["name", "age", "tags", "bio"]}`

// BenchmarkMask measures one Mask of the 128,256-token LLaMA 3 vocabulary
// (the per-token cost of json_schema decoding) in the states a document
// passes through; compare with a decode step of the 2B4T model
// (BenchmarkDecode2B4T in shared/model, or `bitnet bench model`).
func BenchmarkMask(b *testing.B) {
	v := llama3(b)
	for _, bc := range []struct{ name, prefix string }{
		{"start", ``},
		{"object-open", `{`},
		{"key", `{"na`},
		{"string-body", `{"name": "Isaac Newton was`},
		{"string-maxlength", `{"name": "x", "age": 3, "tags": [], "bio": "He wrote`},
		{"number", `{"name": "x", "age": 4`},
		{"after-value", `{"name": "x", "age": 42, "tags": ["optics"]`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := mustCompile(b, benchSchema)
			m := g.NewMatcher(v)
			if err := m.AcceptBytes([]byte(bc.prefix)); err != nil {
				b.Fatal(err)
			}
			allowed := make([]uint64, v.MaskWords())
			logits := make([]float32, v.Size())
			n := 0
			for b.Loop() {
				m.Mask(allowed, 1000)
				ApplyMask(logits, allowed)
			}
			for _, w := range allowed {
				for ; w != 0; w &= w - 1 {
					n++
				}
			}
			b.ReportMetric(float64(n), "allowed")
		})
	}
	b.Run("json_object-string", func(b *testing.B) {
		m := JSONObject().NewMatcher(v)
		if err := m.AcceptBytes([]byte(`{"title": "Opticks, or a treatise`)); err != nil {
			b.Fatal(err)
		}
		allowed := make([]uint64, v.MaskWords())
		for b.Loop() {
			m.Mask(allowed, 1000)
		}
	})
}

func BenchmarkVocabOf(b *testing.B) {
	v := llama3(b)
	for b.Loop() {
		NewVocab(v.bytes)
	}
}
