package inference

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// BenchmarkSchedulerStreams measures aggregate generated tokens per second
// with 1 and 16 concurrent streams: continuous batching should make 16 streams
// several times faster in total than one. Models: the golden tiny model
// (overhead-bound) and random-weight models wide enough for the weight reads
// to matter (hidden 1024 with 4 layers; the 2B4T layer shape with 8 of its 30
// layers, 90 MB of ternary weights).
//
//	go test -run '^$' -bench SchedulerStreams -benchtime 3x ./services/inference
func BenchmarkSchedulerStreams(b *testing.B) {
	const genTokens = 32
	models := []struct {
		name string
		load func(b *testing.B) Model
	}{
		{"tiny", func(b *testing.B) Model { return loadTiny(b, tinyName) }},
		{"h1024x4", func(b *testing.B) Model { return randomModel(b, opticksTokenizer(b), 1024, 2816, 4, 16) }},
		{"h2560x8", func(b *testing.B) Model { return randomModel(b, opticksTokenizer(b), 2560, 6912, 8, 20) }},
	}
	for _, mc := range models {
		m := mc.load(b)
		tok := opticksTokenizer(b)
		for _, streams := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/streams=%d", mc.name, streams), func(b *testing.B) {
				s, err := NewScheduler(m, tok, WithMaxBatch(16))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				var generated atomic.Int64
				b.ResetTimer()
				start := time.Now()
				for range b.N {
					var wg sync.WaitGroup
					for i := range streams {
						wg.Go(func() {
							prompt := []int{0, 40 + i, 50 + i, 60 + i}
							st, err := s.Submit(context.Background(), Request{Prompt: prompt, MaxTokens: genTokens, EndTokens: []int{-1}})
							if err != nil {
								b.Error(err)
								return
							}
							_, _, final := collect(b, st)
							generated.Add(int64(final.Usage.CompletionTokens))
						})
					}
					wg.Wait()
				}
				b.ReportMetric(float64(generated.Load())/time.Since(start).Seconds(), "tok/s")
				st := s.Stats()
				if st.Forwards > 0 {
					b.ReportMetric(float64(st.GeneratedTokens)/float64(st.Forwards), "tok/forward")
				}
			})
		}
	}
}

// BenchmarkGenerateGRPC is the same over gRPC on loopback with the tiny model
// (the service overhead on top of the scheduler).
func BenchmarkGenerateGRPC(b *testing.B) {
	for _, streams := range []int{1, 16} {
		b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) {
			n := startNode(b, nil)
			var generated atomic.Int64
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				var wg sync.WaitGroup
				for i := range streams {
					wg.Go(func() {
						req := &inferencev1.GenerateRequest{Model: tinyName, Prompt: testPrompts[i%len(testPrompts)],
							MaxTokens: 32, Temperature: proto.Float32(0)}
						stream, err := n.client.Generate(context.Background(), req)
						if err != nil {
							b.Error(err)
							return
						}
						msgs, err := readAll(stream)
						if err != nil {
							b.Error(err)
							return
						}
						generated.Add(int64(msgs[len(msgs)-1].GetUsage().GetCompletionTokens()))
					})
				}
				wg.Wait()
			}
			b.ReportMetric(float64(generated.Load())/time.Since(start).Seconds(), "tok/s")
		})
	}
}

// BenchmarkForwardDecode is the engine's ceiling for the scheduler: decode
// tokens per second of bare model.Forward calls with 1 and 16 sequences per
// call (each sequence 64 tokens in).
func BenchmarkForwardDecode(b *testing.B) {
	m := randomModel(b, opticksTokenizer(b), 2560, 6912, 8, 20)
	for _, batch := range []int{1, 16} {
		b.Run(fmt.Sprintf("h2560x8/batch=%d", batch), func(b *testing.B) {
			steps := make([]model.Step, batch)
			prompt := make([]int, 64)
			for i := range prompt {
				prompt[i] = 40 + i
			}
			for i := range steps {
				steps[i] = model.Step{Seq: m.NewSequence(), Tokens: prompt}
				if err := m.Forward(context.Background(), steps[i:i+1]); err != nil {
					b.Fatal(err)
				}
				steps[i].Tokens = []int{50}
			}
			b.ResetTimer()
			for range b.N {
				if err := m.Forward(context.Background(), steps); err != nil {
					b.Fatal(err)
				}
				for i := range steps {
					steps[i].Seq.Truncate(64)
				}
			}
			b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}
