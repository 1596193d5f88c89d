package mesh

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/safetensors"
)

// goldenTokenizer is the 600-token BPE of the repository's tiny models.
const goldenTokenizer = "../../testdata/models/tiny-gqa-tied-f32/tokenizer.json"

// writeWideCheckpoint writes a random full-precision Hugging Face BitNet
// directory whose linears are 256 wide, the narrowest TQ2_0 can store (the
// committed tiny models are 64 wide).
func writeWideCheckpoint(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const vocab, hidden, kv, ffn, layers = 600, 256, 128, 512, 1
	r := rand.New(rand.NewPCG(42, 1))
	f32 := func(n int, mean, std float64) []byte {
		b := make([]byte, 4*n)
		for i := range n {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(mean+r.NormFloat64()*std)))
		}
		return b
	}
	ts := []safetensors.Tensor{
		{Name: "model.embed_tokens.weight", DType: "F32", Shape: []int{vocab, hidden}, Data: f32(vocab*hidden, 0, 0.05)},
		{Name: "model.norm.weight", DType: "F32", Shape: []int{hidden}, Data: f32(hidden, 1, 0.1)},
	}
	for l := range layers {
		p := fmt.Sprintf("model.layers.%d.", l)
		ts = append(ts,
			safetensors.Tensor{Name: p + "input_layernorm.weight", DType: "F32", Shape: []int{hidden}, Data: f32(hidden, 1, 0.1)},
			safetensors.Tensor{Name: p + "post_attention_layernorm.weight", DType: "F32", Shape: []int{hidden}, Data: f32(hidden, 1, 0.1)},
			safetensors.Tensor{Name: p + "self_attn.attn_sub_norm.weight", DType: "F32", Shape: []int{hidden}, Data: f32(hidden, 1, 0.1)},
			safetensors.Tensor{Name: p + "mlp.ffn_sub_norm.weight", DType: "F32", Shape: []int{ffn}, Data: f32(ffn, 1, 0.1)},
		)
		for _, lin := range []struct {
			name      string
			out, cols int
		}{
			{"self_attn.q_proj", hidden, hidden}, {"self_attn.k_proj", kv, hidden}, {"self_attn.v_proj", kv, hidden},
			{"self_attn.o_proj", hidden, hidden}, {"mlp.gate_proj", ffn, hidden}, {"mlp.up_proj", ffn, hidden}, {"mlp.down_proj", hidden, ffn},
		} {
			ts = append(ts, safetensors.Tensor{Name: p + lin.name + ".weight", DType: "F32", Shape: []int{lin.out, lin.cols},
				Data: f32(lin.out*lin.cols, 0, 1/math.Sqrt(float64(lin.cols)))})
		}
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := json.Marshal(map[string]any{
		"architectures": []string{"BitNetForCausalLM"}, "model_type": "bitnet",
		"vocab_size": vocab, "hidden_size": hidden, "intermediate_size": ffn, "num_hidden_layers": layers,
		"num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512,
		"rms_norm_eps": 1e-5, "rope_theta": 500000.0, "hidden_act": "relu2", "tie_word_embeddings": true,
		"bos_token_id": 598, "eos_token_id": 599,
		"quantization_config": map[string]any{"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "online"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(goldenTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tok, 0o644); err != nil {
		t.Fatal(err)
	}
}

// running is a Service serving in the background.
type running struct {
	*Service
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// stop shuts the service down (once) and returns Serve's error.
func (r *running) stop() error {
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(30 * time.Second):
			r.err = errors.New("service did not stop within 30 s")
		}
	})
	return r.err
}

// serve builds kind from cfg and serves it until the test ends (or stop).
func serve(t testing.TB, kind Kind, cfg Config) *running {
	t.Helper()
	s, err := Build(kind, cfg)
	if err != nil {
		t.Fatalf("build %s: %v", kind, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Service: s, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("%s: %v", kind, err)
		}
	})
	return r
}

// eventually polls cond every 20 ms until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
