package inference

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// embedModel is a small random model of the BitNet embedding family
// (Qwen3 block, per-projection norms, last-token pooling) over the opticks
// tokenizer, whose <|end_of_text|> closes every text.
func embedModel(t testing.TB, pooling string) *model.Model {
	t.Helper()
	tok := opticksTokenizer(t)
	w := randomWeights(t, tok, 48, 136, 2, 4)
	c := &w.Config
	c.Architecture, c.HiddenAct, c.ProjNorms = model.ArchQwen3, model.ActSiLU, true
	c.Pooling, c.NormalizeEmbeddings, c.EmbedSuffix = pooling, true, []int{c.EOSTokenIDs[0]}
	r := rand.New(rand.NewPCG(3, 3))
	for i := range w.Layers {
		l := &w.Layers[i]
		l.AttnSubNorm, l.FFNSubNorm = nil, nil
		for _, n := range l.NormSpecs(*c) {
			if n.Want && *n.V == nil {
				v := make([]float32, n.N)
				for j := range v {
					v[j] = 1 + 0.1*float32(r.NormFloat64())
				}
				*n.V = v
			}
		}
	}
	m, err := model.New(w, tok)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestSchedulerEmbedBatched runs many embedding requests through one
// scheduler with chunked prefill: they share Forward calls (continuous
// batching) and each embedding equals the model's own Embed.
func TestSchedulerEmbedBatched(t *testing.T) {
	for _, pool := range []string{model.PoolLast, model.PoolMean} {
		m := embedModel(t, pool)
		g := newGated(m, true)
		s, err := NewScheduler(g, m.Tokenizer(), WithMaxBatch(8), WithPrefillChunk(3), WithMaxBatchTokens(12))
		if err != nil {
			t.Fatal(err)
		}
		var ids [][]int
		var streams []*Stream
		for _, p := range testPrompts {
			in := model.EmbedIDs(m.Config(), m.Tokenizer(), p)
			st, err := s.Submit(context.Background(), Request{Prompt: in, Embed: true})
			if err != nil {
				t.Fatal(err)
			}
			ids, streams = append(ids, in), append(streams, st)
		}
		g.open()
		for i, st := range streams {
			_, _, final := collect(t, st)
			if final.Err != nil {
				t.Fatal(final.Err)
			}
			want, err := m.Embed(context.Background(), ids[i])
			if err != nil {
				t.Fatal(err)
			}
			var d float64
			for k := range want {
				d = math.Max(d, math.Abs(float64(want[k]-final.Embedding[k])))
			}
			if len(final.Embedding) != len(want) || d > 1e-5 {
				t.Errorf("%s: embedding differs from Model.Embed by %g (len %d, want %d)", pool, d, len(final.Embedding), len(want))
			}
			if final.Usage.PromptTokens != len(ids[i]) || final.Usage.CompletionTokens != 0 {
				t.Errorf("embedding usage %+v, want %d prompt tokens", final.Usage, len(ids[i]))
			}
		}
		if st := s.Stats(); st.BatchedForwards == 0 {
			t.Errorf("no batched forward: %+v", st)
		}
		s.Close()
	}
}

func TestSchedulerEmbedRejects(t *testing.T) {
	m := loadTiny(t, tinyName) // a causal LM
	s, err := NewScheduler(m, m.Tokenizer())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Submit(context.Background(), Request{Prompt: []int{1, 2}, Embed: true}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("embed on a causal LM: got %v, want ErrUnsupported", err)
	}
	em := embedModel(t, model.PoolLast)
	se, err := NewScheduler(em, em.Tokenizer())
	if err != nil {
		t.Fatal(err)
	}
	defer se.Close()
	if _, err := se.Submit(context.Background(), Request{Prompt: []int{1, 2}, MaxTokens: 3}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("generation with an embedding model: got %v, want ErrUnsupported", err)
	}
	long := make([]int, em.Config().MaxPositions+1)
	if _, err := se.Submit(context.Background(), Request{Prompt: long, Embed: true}); !errors.Is(err, ErrInvalid) {
		t.Errorf("too long: got %v, want ErrInvalid", err)
	}
	full := make([]int, em.Config().MaxPositions) // the whole context: fine for an embedding
	st, err := se.Submit(context.Background(), Request{Prompt: full, Embed: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, final := collect(t, st); final.Err != nil || len(final.Embedding) != em.Config().HiddenSize {
		t.Errorf("full-context embedding: err %v, %d dims", final.Err, len(final.Embedding))
	}
}

func TestEncodeEmbedding(t *testing.T) {
	v := []float32{0.5, -0.25, 0, 1, -1, 0.1, 0.2, -0.3, 0.9}
	var e inferencev1.Embedding
	encodeEmbedding(&e, v, inferencev1.EmbeddingEncoding_EMBEDDING_ENCODING_INT8)
	if e.Scale != 1.0/127 || !slices.Equal(e.Int8Values, []int32{64, -32, 0, 127, -127, 13, 25, -38, 114}) {
		t.Errorf("int8: got %v scale %v", e.Int8Values, e.Scale)
	}
	e = inferencev1.Embedding{}
	encodeEmbedding(&e, v, inferencev1.EmbeddingEncoding_EMBEDDING_ENCODING_BINARY)
	// signs 1 0 0 1 0 1 1 0 | 1 -> 0b10010110, 0b10000000
	if !slices.Equal(e.Binary, []byte{0x96, 0x80}) {
		t.Errorf("binary: got %08b", e.Binary)
	}
	e = inferencev1.Embedding{}
	encodeEmbedding(&e, v, inferencev1.EmbeddingEncoding_EMBEDDING_ENCODING_FLOAT)
	if !slices.Equal(e.Values, v) {
		t.Errorf("float: got %v", e.Values)
	}
}

func TestEmbedStatusCodes(t *testing.T) {
	for err, want := range map[error]codes.Code{ErrUnsupported: codes.FailedPrecondition} {
		if got := status.Code(toStatus(err)); got != want {
			t.Errorf("%v: got %v, want %v", err, got, want)
		}
	}
}
