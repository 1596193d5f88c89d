package model

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/half"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// config2B is the shape of BitNet b1.58 2B4T with the given number of layers.
func config2B(layers int) Config {
	return Config{
		Architecture: ArchBitNet, VocabSize: 128256, HiddenSize: 2560, IntermediateSize: 6912,
		NumLayers: layers, NumHeads: 20, NumKVHeads: 5, HeadDim: 128, MaxPositions: 4096,
		RopeTheta: 500000, RMSNormEps: 1e-5, HiddenAct: "relu2", TieWordEmbeddings: true,
		BOSTokenID: 128000, EOSTokenIDs: []int{128001},
	}
}

// fastRandomWeights fills a model of config c with random codes and
// bf16-exact floats, quickly enough for 2B-sized benchmarks.
func fastRandomWeights(tb testing.TB, c Config) *Weights {
	tb.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	floats := func(n int, base, spread float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = half.FromBFloat16(half.ToBFloat16(base + spread*(r.Float32()-0.5)))
		}
		return v
	}
	tern := func(rows, cols int) *ternary.Matrix {
		m, err := ternary.New(rows, cols, 0.01)
		if err != nil {
			tb.Fatal(err)
		}
		for i := range m.Codes {
			// Four codes from {0,1,2} per byte; padding stays zero weight.
			x := r.Uint32()
			m.Codes[i] = byte(x%3) | byte(x>>8%3)<<2 | byte(x>>16%3)<<4 | byte(x>>24%3)<<6
		}
		return m
	}
	h, q, kv, in := c.HiddenSize, c.QDim(), c.KVDim(), c.IntermediateSize
	w := &Weights{Config: c, Embed: floats(c.VocabSize*h, 0, 0.05), Norm: floats(h, 1, 0.2)}
	for i := 0; i < c.NumLayers; i++ {
		w.Layers = append(w.Layers, Layer{
			AttnNorm: floats(h, 1, 0.2), AttnSubNorm: floats(q, 1, 0.2),
			FFNNorm: floats(h, 1, 0.2), FFNSubNorm: floats(in, 1, 0.2),
			Q: tern(q, h), K: tern(kv, h), V: tern(kv, h), O: tern(h, q),
			Gate: tern(in, h), Up: tern(in, h), Down: tern(h, in),
		})
	}
	return w
}

// benchLayers reads BITNET_BENCH_LAYERS (default 2; 30 is the full 2B model).
func benchLayers() int {
	if n, err := strconv.Atoi(os.Getenv("BITNET_BENCH_LAYERS")); err == nil && n > 0 {
		return n
	}
	return 2
}

// Benchmark2B measures prefill (128 tokens) and decode (one token at
// position 128) on the 2B4T shape with random weights; tokens/s are reported.
func Benchmark2B(b *testing.B) {
	c := config2B(benchLayers())
	w := fastRandomWeights(b, c)
	for _, threads := range []int{1, 2} {
		eng, err := kernels.New(kernels.WithThreads(threads))
		if err != nil {
			b.Fatal(err)
		}
		m, err := New(w, nil, WithEngine(eng))
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		prompt := randomTokens(rand.New(rand.NewPCG(3, 4)), 128, c.VocabSize)
		b.Run(fmt.Sprintf("layers=%d/threads=%d/prefill128", c.NumLayers, threads), func(b *testing.B) {
			seq := m.NewSequence()
			st := []Step{{Seq: seq, Tokens: prompt}}
			cpu := startCPU()
			for b.Loop() {
				seq.Reset()
				if err := m.Forward(ctx, st); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(prompt))/b.Elapsed().Seconds(), "tokens/s")
			b.ReportMetric(float64(b.N*len(prompt))/cpu.seconds(), "tokens/cpu-s")
		})
		b.Run(fmt.Sprintf("layers=%d/threads=%d/decode", c.NumLayers, threads), func(b *testing.B) {
			seq := m.NewSequence()
			if err := m.Forward(ctx, []Step{{Seq: seq, Tokens: prompt}}); err != nil {
				b.Fatal(err)
			}
			st := []Step{{Seq: seq, Tokens: []int{42}}}
			cpu := startCPU()
			for b.Loop() {
				seq.Truncate(len(prompt))
				if err := m.Forward(ctx, st); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
			b.ReportMetric(float64(b.N)/cpu.seconds(), "tokens/cpu-s")
		})
		// A continuous-batching step: 16 sequences decode one token each
		// (the inference service's batch), weights read once for all.
		b.Run(fmt.Sprintf("layers=%d/threads=%d/decode16", c.NumLayers, threads), func(b *testing.B) {
			const batch = 16
			st := make([]Step, batch)
			for i := range st {
				st[i] = Step{Seq: m.NewSequence(), Tokens: prompt[:8+i]}
			}
			if err := m.Forward(ctx, st); err != nil {
				b.Fatal(err)
			}
			for i := range st {
				st[i].Tokens = []int{42 + i}
			}
			cpu := startCPU()
			for b.Loop() {
				for i := range st {
					st[i].Seq.Truncate(8 + i)
				}
				if err := m.Forward(ctx, st); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "tokens/s")
			b.ReportMetric(float64(b.N*batch)/cpu.seconds(), "tokens/cpu-s")
		})
		m.Close()
		eng.Close()
	}
}

// BenchmarkNew2B measures New on the 2B4T shape (embedding compaction and the
// int8 head dominate; layers are shared, not copied).
func BenchmarkNew2B(b *testing.B) {
	w := fastRandomWeights(b, config2B(1))
	for b.Loop() {
		m, err := New(w, nil)
		if err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}

// BenchmarkLoad loads the model named by BITNET_BENCH_MODEL (a .gguf file or
// HF directory, e.g. from tools/randmodel); skipped when unset.
func BenchmarkLoad(b *testing.B) {
	path := os.Getenv("BITNET_BENCH_MODEL")
	if path == "" {
		b.Skip("BITNET_BENCH_MODEL not set")
	}
	var rss float64
	for b.Loop() {
		m, err := Load(path)
		if err != nil {
			b.Fatal(err)
		}
		rss = vmRSS()
		m.Close()
	}
	b.ReportMetric(rss, "rss-MiB")
}

// vmRSS returns the resident memory in MiB from /proc/self/status (0 where
// that file is missing).
func vmRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	return 0
}

// BenchmarkDecodeKV measures one decode step at position 1024 with an fp32
// and an fp16 KV cache on one thread (attention dominates less than at long
// contexts, but the fp16 cache's reads show).
func BenchmarkDecodeKV(b *testing.B) {
	c := config2B(benchLayers())
	w := fastRandomWeights(b, c)
	eng, err := kernels.New(kernels.WithThreads(1))
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	prompt := randomTokens(rand.New(rand.NewPCG(5, 6)), 1024, c.VocabSize)
	for _, kv := range []KVType{KVFloat32, KVFloat16} {
		m, err := New(w, nil, WithEngine(eng), WithKVType(kv))
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		seq := m.NewSequence()
		if err := m.Forward(ctx, []Step{{Seq: seq, Tokens: prompt}}); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("layers=%d/kv=%s/pos=%d", c.NumLayers, kv, len(prompt)), func(b *testing.B) {
			st := []Step{{Seq: seq, Tokens: []int{42}}}
			cpu := startCPU()
			for b.Loop() {
				seq.Truncate(len(prompt))
				if err := m.Forward(ctx, st); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/cpu.seconds(), "tokens/cpu-s")
		})
		m.Close()
	}
}
