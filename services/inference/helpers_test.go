package inference

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// modelsDir holds the golden tiny models (HF directories).
const modelsDir = "../../testdata/models"

// tinyName is the model most tests serve.
const tinyName = "tiny-gqa-tied-f32"

// loadTiny loads a golden tiny model, closed with the test.
func loadTiny(t testing.TB, name string) *model.Model {
	t.Helper()
	m, err := model.Load(filepath.Join(modelsDir, name))
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// directGreedy generates greedily with the model alone, one sequence, the
// reference for what the scheduler and server must produce.
func directGreedy(t testing.TB, m *model.Model, prompt []int, maxTokens int) []int {
	t.Helper()
	seq := m.NewSequence()
	steps := []model.Step{{Seq: seq, Tokens: prompt}}
	var out []int
	for len(out) < maxTokens {
		if err := m.Forward(context.Background(), steps); err != nil {
			t.Fatalf("forward: %v", err)
		}
		best := 0
		for i, v := range steps[0].Logits {
			if v > steps[0].Logits[best] {
				best = i
			}
		}
		if m.IsEOS(best) {
			break
		}
		out = append(out, best)
		steps[0].Tokens = []int{best}
	}
	return out
}

// promptOf encodes text after BOS as the server does.
func promptOf(m *model.Model, text string) []int {
	ids := []int{m.Config().BOSTokenID}
	return append(ids, m.Tokenizer().EncodeOrdinary(text)...)
}

// gatedModel holds every Forward call while its gate is shut, so tests can
// line requests up deterministically.
type gatedModel struct {
	*model.Model
	mu      sync.Mutex
	gate    chan struct{}
	entered chan struct{} // signalled when a Forward call waits at the gate
}

func newGated(m *model.Model, shut bool) *gatedModel {
	g := &gatedModel{Model: m, entered: make(chan struct{}, 1)}
	if shut {
		g.gate = make(chan struct{})
	}
	return g
}

func (g *gatedModel) Forward(ctx context.Context, steps []model.Step) error {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		select {
		case g.entered <- struct{}{}:
		default:
		}
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.Model.Forward(ctx, steps)
}

// allow lets exactly one held Forward call run (the gate must be shut).
func (g *gatedModel) allow(t testing.TB) {
	t.Helper()
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	select {
	case gate <- struct{}{}:
	case <-time.After(10 * time.Second):
		t.Fatal("no Forward call waited at the gate in 10 s")
	}
}

// tryAllow lets one held Forward call run if one comes within d.
func (g *gatedModel) tryAllow(d time.Duration) bool {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	select {
	case gate <- struct{}{}:
		return true
	case <-time.After(d):
		return false
	}
}

// open lets Forward calls run from now on.
func (g *gatedModel) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
}

// waitEntered waits until a Forward call is held at the gate.
func (g *gatedModel) waitEntered(t testing.TB) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no Forward call reached the gate in 10 s")
	}
}

// collect reads a stream to its end.
func collect(t testing.TB, s *Stream) (ids []int, text string, final Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var b strings.Builder
	for {
		ev, err := s.Recv(ctx)
		if errors.Is(err, io.EOF) {
			t.Fatal("stream ended without a final event")
		}
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		ids = append(ids, ev.TokenIDs...)
		b.WriteString(ev.Text)
		if ev.Final {
			return ids, b.String(), ev
		}
	}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// randomModel builds a model with random ternary weights of the given width
// and depth over tok (for benchmarks at a size where batching matters).
func randomModel(t testing.TB, tok *tokenizer.Tokenizer, hidden, inter, layers, heads int) *model.Model {
	t.Helper()
	m, err := model.New(randomWeights(t, tok, hidden, inter, layers, heads), tok)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// randomWeights makes the weights of randomModel.
func randomWeights(t testing.TB, tok *tokenizer.Tokenizer, hidden, inter, layers, heads int) *model.Weights {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 1))
	vocab := tok.VocabSize()
	c := model.Config{
		Architecture: model.ArchBitNet, VocabSize: vocab, HiddenSize: hidden, IntermediateSize: inter,
		NumLayers: layers, NumHeads: heads, NumKVHeads: heads / 2, HeadDim: hidden / heads, MaxPositions: 1024,
		RopeTheta: 500000, RMSNormEps: 1e-5, HiddenAct: "relu2", TieWordEmbeddings: true,
		BOSTokenID: 0, EOSTokenIDs: []int{vocab - 1},
	}
	floats := func(n int, base, spread float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = base + spread*float32(r.NormFloat64())
		}
		return v
	}
	tern := func(rows, cols int) *ternary.Matrix {
		v := make([]int8, rows*cols)
		var bits uint64
		for i := range v {
			if i%32 == 0 { // one draw per 32 weights: big models build fast
				bits = r.Uint64()
			}
			v[i] = int8(bits&3%3) - 1 // slightly favours -1; fine for timing
			bits >>= 2
		}
		m, err := ternary.Pack(rows, cols, v, 0.02+0.05*r.Float32())
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	h, q, kv, in := c.HiddenSize, c.QDim(), c.KVDim(), c.IntermediateSize
	w := &model.Weights{Config: c, Embed: floats(vocab*h, 0, 1), Norm: floats(h, 1, 0.1)}
	for i := 0; i < c.NumLayers; i++ {
		w.Layers = append(w.Layers, model.Layer{
			AttnNorm: floats(h, 1, 0.1), AttnSubNorm: floats(q, 1, 0.1),
			FFNNorm: floats(h, 1, 0.1), FFNSubNorm: floats(in, 1, 0.1),
			Q: tern(q, h), K: tern(kv, h), V: tern(kv, h), O: tern(h, q),
			Gate: tern(in, h), Up: tern(in, h), Down: tern(h, in),
		})
	}
	return w
}

// opticksTokenizer is the 600-token BPE tokenizer of the golden models.
func opticksTokenizer(t testing.TB) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.Load("../../testdata/tokenizer/opticks-bpe600.json")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
