package ternary

import (
	"math/rand/v2"
	"testing"
)

// The 2B4T FFN shape: 6912 x 2560 (17.7M weights). Benchmarks report
// ns/weight; a 2B model has about 1.7e9 ternary weights.
const benchRows, benchCols = 6912, 2560

func benchMatrix(b *testing.B) *Matrix {
	b.Helper()
	m, _ := randMatrix(b, rand.New(rand.NewPCG(9, 9)), benchRows, benchCols, 0.75)
	return m
}

func reportPerWeight(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(benchRows*benchCols), "ns/weight")
}

// BenchmarkCopyBaseline is the floor for DecodeTQ2_0: allocate and copy the
// same number of bytes.
func BenchmarkCopyBaseline(b *testing.B) {
	src := make([]byte, benchRows*benchCols/BlockSize*TQ2_0Bytes)
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		dst := make([]byte, benchRows*benchCols/4)
		copy(dst, src)
	}
	reportPerWeight(b)
}

func BenchmarkFromHFPacked(b *testing.B) {
	p, err := benchMatrix(b).HFPacked()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if _, err := FromHFPacked(p, benchRows, benchCols, 1); err != nil {
			b.Fatal(err)
		}
	}
	reportPerWeight(b)
}

func BenchmarkHFPacked(b *testing.B) {
	m := benchMatrix(b)
	b.SetBytes(int64(len(m.Codes)))
	for b.Loop() {
		if _, err := m.HFPacked(); err != nil {
			b.Fatal(err)
		}
	}
	reportPerWeight(b)
}

func BenchmarkDecodeTQ2_0(b *testing.B) {
	data, err := benchMatrix(b).EncodeTQ2_0()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeTQ2_0(data, benchRows, benchCols); err != nil {
			b.Fatal(err)
		}
	}
	reportPerWeight(b)
}

func BenchmarkEncodeTQ2_0(b *testing.B) {
	m := benchMatrix(b)
	b.SetBytes(int64(len(m.Codes)))
	for b.Loop() {
		if _, err := m.EncodeTQ2_0(); err != nil {
			b.Fatal(err)
		}
	}
	reportPerWeight(b)
}

func BenchmarkDecodeTQ1_0(b *testing.B) {
	data, err := benchMatrix(b).EncodeTQ1_0()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeTQ1_0(data, benchRows, benchCols); err != nil {
			b.Fatal(err)
		}
	}
	reportPerWeight(b)
}

func BenchmarkEncodeTQ1_0(b *testing.B) {
	m := benchMatrix(b)
	b.SetBytes(int64(len(m.Codes)))
	for b.Loop() {
		if _, err := m.EncodeTQ1_0(); err != nil {
			b.Fatal(err)
		}
	}
	reportPerWeight(b)
}

func BenchmarkQuantize(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	w := make([]float32, benchRows*benchCols)
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	b.SetBytes(int64(4 * len(w)))
	for b.Loop() {
		if _, err := Quantize(benchRows, benchCols, w); err != nil {
			b.Fatal(err)
		}
	}
	reportPerWeight(b)
}

// BenchmarkPackTrits is the load-time cost of the 1.6-bit layout, paid when
// a machine's plan decodes from it.
func BenchmarkPackTrits(b *testing.B) {
	m := benchMatrix(b)
	b.SetBytes(int64(len(m.Codes)))
	for b.Loop() {
		m.Trits = nil
		if err := m.PackTrits(); err != nil {
			b.Fatal(err)
		}
	}
	reportPerWeight(b)
}
