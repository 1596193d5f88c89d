package tokenizer

import (
	"testing"
)

// benchEncode reports bytes/s (SetBytes) and tokens/s of encoding the
// Opticks corpus; cold clears the word cache before every pass.
func benchEncode(b *testing.B, tk *Tokenizer, cold bool) {
	text := opticksText(b)
	n := len(tk.Encode(text))
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for b.Loop() {
		if cold {
			tk.cache = wordCache{}
		}
		tk.Encode(text)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

func BenchmarkEncodeLlama3(b *testing.B)     { benchEncode(b, loadLlama3(b), false) }
func BenchmarkEncodeLlama3Cold(b *testing.B) { benchEncode(b, loadLlama3(b), true) }
func BenchmarkEncodeOpticks(b *testing.B)    { benchEncode(b, loadOpticks(b), false) }

func BenchmarkDecodeLlama3(b *testing.B) {
	tk := loadLlama3(b)
	text := opticksText(b)
	ids := tk.Encode(text)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tk.Decode(ids)
	}
}

func BenchmarkParseLlama3(b *testing.B) {
	data := readGzip(b, "llama3.json.gz")
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
