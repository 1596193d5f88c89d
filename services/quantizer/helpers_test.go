package quantizer

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
	"github.com/bitnet-mesh/bitnet-mesh/shared/half"
	"github.com/bitnet-mesh/bitnet-mesh/shared/safetensors"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// goldenDir is a golden tiny model of the engine's tests (hidden size 64:
// too narrow for TQ blocks of 256).
func goldenDir(name string) string { return filepath.Join("..", "..", "testdata", "models", name) }

// tiny256 is the smallest GQA shape whose linears are whole TQ blocks, with
// the golden models' 600-token tokenizer.
func tiny256Config(packed bool) map[string]any {
	mode := "online"
	if packed {
		mode = "offline"
	}
	return map[string]any{
		"architectures": []string{"BitNetForCausalLM"}, "model_type": "bitnet",
		"vocab_size": 600, "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
		"num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512,
		"rms_norm_eps": 1e-5, "rope_theta": 500000.0, "hidden_act": "relu2", "tie_word_embeddings": true,
		"bos_token_id": 598, "eos_token_id": 599,
		"quantization_config": map[string]any{"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": mode},
	}
}

func f32Bytes(x []float32) []byte {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func gauss(r *rand.Rand, n int, std float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * std)
	}
	return x
}

// writeCheckpoint writes a random 256-wide Hugging Face BitNet directory:
// full-precision F32 linears, or packed ternary ones (offline). The
// embedding holds fp16-exact values, so GGUF's F16 embedding is lossless.
func writeCheckpoint(t testing.TB, dir string, packed bool, seed uint64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	const V, H, QD, KVD, IN = 600, 256, 256, 128, 512
	emb := gauss(r, V*H, 0.05)
	for i, v := range emb {
		emb[i] = half.FromFloat16(half.ToFloat16(v))
	}
	norm := func(n int) []float32 {
		x := gauss(r, n, 0.1)
		for i := range x {
			x[i] += 1
		}
		return x
	}
	ts := []safetensors.Tensor{
		{Name: "model.embed_tokens.weight", DType: "F32", Shape: []int{V, H}, Data: f32Bytes(emb)},
		{Name: "model.norm.weight", DType: "F32", Shape: []int{H}, Data: f32Bytes(norm(H))},
	}
	for l := 0; l < 2; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		ts = append(ts,
			safetensors.Tensor{Name: p + "input_layernorm.weight", DType: "F32", Shape: []int{H}, Data: f32Bytes(norm(H))},
			safetensors.Tensor{Name: p + "post_attention_layernorm.weight", DType: "F32", Shape: []int{H}, Data: f32Bytes(norm(H))},
			safetensors.Tensor{Name: p + "self_attn.attn_sub_norm.weight", DType: "F32", Shape: []int{QD}, Data: f32Bytes(norm(QD))},
			safetensors.Tensor{Name: p + "mlp.ffn_sub_norm.weight", DType: "F32", Shape: []int{IN}, Data: f32Bytes(norm(IN))},
		)
		for _, lin := range []struct {
			name      string
			out, cols int
		}{
			{"self_attn.q_proj", QD, H}, {"self_attn.k_proj", KVD, H}, {"self_attn.v_proj", KVD, H},
			{"self_attn.o_proj", H, QD}, {"mlp.gate_proj", IN, H}, {"mlp.up_proj", IN, H}, {"mlp.down_proj", H, IN},
		} {
			w := gauss(r, lin.out*lin.cols, 1/math.Sqrt(float64(lin.cols)))
			if !packed {
				ts = append(ts, safetensors.Tensor{Name: p + lin.name + ".weight", DType: "F32", Shape: []int{lin.out, lin.cols}, Data: f32Bytes(w)})
				continue
			}
			m, err := ternary.Quantize(lin.out, lin.cols, w)
			if err != nil {
				t.Fatal(err)
			}
			codes, err := m.HFPacked()
			if err != nil {
				t.Fatal(err)
			}
			ws, err := ternary.ScaleToHF(m.Scale, ternary.HFAutoBitLinear)
			if err != nil {
				t.Fatal(err)
			}
			ts = append(ts,
				safetensors.Tensor{Name: p + lin.name + ".weight", DType: "U8", Shape: []int{lin.out / 4, lin.cols}, Data: codes},
				safetensors.Tensor{Name: p + lin.name + ".weight_scale", DType: "F32", Shape: []int{1}, Data: f32Bytes([]float32{ws})},
			)
		}
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := json.Marshal(tiny256Config(packed))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(filepath.Join(goldenDir("tiny-gqa-tied-f32"), "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tok, 0o644); err != nil {
		t.Fatal(err)
	}
}

// testEnv is a registry Store and a Quantizer over it.
type testEnv struct {
	store *registry.Store
	src   *gatedSource
	q     *Quantizer
}

func newEnv(t testing.TB, opts ...Option) *testEnv {
	t.Helper()
	st, err := registry.Open(t.TempDir())
	if err != nil {
		t.Fatalf("registry.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	b := registry.NewBackend(st)
	src := &gatedSource{Source: b}
	q, err := New(src, b, append([]Option{WithWorkDir(t.TempDir())}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return &testEnv{store: st, src: src, q: q}
}

// push uploads every file of dir as a blob and creates NAME's next version.
func (e *testEnv) push(t testing.TB, name, dir string, format registry.Format) registry.Version {
	t.Helper()
	ctx := context.Background()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []registry.BlobRef
	for _, ent := range ents {
		f, err := os.Open(filepath.Join(dir, ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.store.PutBlob(ctx, f, "")
		f.Close()
		if err != nil {
			t.Fatalf("PutBlob(%s): %v", ent.Name(), err)
		}
		files = append(files, registry.BlobRef{Path: ent.Name(), Digest: b.Digest})
	}
	v, err := e.store.CreateVersion(ctx, name, registry.VersionSpec{
		Files: files, Metadata: registry.Metadata{Format: format, Lineage: registry.Lineage{Source: registry.SourceUpload}}, CreateModel: true,
	})
	if err != nil {
		t.Fatalf("CreateVersion(%s): %v", name, err)
	}
	return v
}

// wait waits for a job to reach a terminal state.
func wait(t testing.TB, q *Quantizer, id string) Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var last Job
	if err := q.Watch(ctx, id, func(j Job) error { last = j; return nil }); err != nil {
		t.Fatalf("Watch(%s): %v (last state %v)", id, err, last.State)
	}
	return last
}

// gatedSource blocks OpenBlob while closed, until opened or its ctx ends:
// it holds a job in its fetching phase.
type gatedSource struct {
	Source
	mu   sync.Mutex
	gate chan struct{} // nil: open
	hits chan struct{} // signalled when a blocked call starts
}

func (g *gatedSource) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate, g.hits = make(chan struct{}), make(chan struct{}, 16)
}

func (g *gatedSource) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
}

func (g *gatedSource) OpenBlob(ctx context.Context, d registry.Digest) (io.ReadCloser, int64, error) {
	g.mu.Lock()
	gate, hits := g.gate, g.hits
	g.mu.Unlock()
	if gate != nil {
		hits <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
	return g.Source.OpenBlob(ctx, d)
}
