package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// familyConfigs are small configurations of every family with widths that
// are multiples of nothing the kernels like (not of 256, 32 or 8): the
// shapes the any-width layout must handle, as 1bitLLM 3B's 3200/8640 do.
func familyConfigs() map[string]Config {
	base := tinyConfig()
	cfgs := map[string]Config{}

	c := base // 2B4T, the reference family
	cfgs["bitnet"] = c

	c = base // 1bitLLM: SiLU, MHA, untied, odd widths everywhere
	c.Architecture, c.HiddenAct = ArchBitNetB158, ActSiLU
	c.HiddenSize, c.NumHeads, c.NumKVHeads, c.HeadDim, c.IntermediateSize = 100, 5, 5, 20, 270
	c.TieWordEmbeddings = false
	cfgs["bitnet-b1.58 odd widths"] = c

	c = base // Llama3-8B-1.58 / Falcon3: head_dim*heads != hidden, llama3 RoPE scaling
	c.Architecture, c.HiddenAct = ArchLlama, ActSiLU
	c.HiddenSize, c.NumHeads, c.NumKVHeads, c.HeadDim, c.IntermediateSize = 72, 4, 2, 26, 150
	c.RopeTheta, c.RMSNormEps = 500000, 1e-6
	c.RopeScaling = &RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPosition: 16}
	c.TieWordEmbeddings = false
	cfgs["llama"] = c

	c = cfgs["llama"] // transformers' BitLinear with use_rms_norm (per-projection norms)
	c.ProjNorms, c.ProjNormEps, c.RopeScaling = true, 1e-5, &RopeScaling{Type: "linear", Factor: 2}
	cfgs["llama use_rms_norm"] = c

	c = base // BitNet-embedding-0.6B: Qwen3, q/k norms, head_dim 32 with hidden 48
	c.Architecture, c.HiddenAct = ArchQwen3, ActSiLU
	c.HiddenSize, c.NumHeads, c.NumKVHeads, c.HeadDim, c.IntermediateSize = 48, 4, 2, 32, 136
	c.ProjNorms, c.RMSNormEps, c.RopeTheta = true, 1e-6, 1000000
	c.Pooling, c.NormalizeEmbeddings = PoolLast, true
	cfgs["qwen3"] = c

	c = base // BitNet-embedding-270M: Gemma3 text, sliding window, sandwich norms
	c.Architecture, c.HiddenAct = ArchGemma3, ActGELUTanh
	c.HiddenSize, c.NumHeads, c.NumKVHeads, c.HeadDim, c.IntermediateSize = 40, 2, 1, 32, 112
	c.NumLayers, c.ProjNorms, c.RMSNormEps = 3, true, 1e-6
	c.QueryPreAttnScalar, c.SlidingWindow, c.SlidingLayers = 24, 5, []bool{true, true, false}
	c.RopeTheta, c.RopeLocalTheta = 1000000, 10000
	c.Pooling, c.NormalizeEmbeddings = PoolLast, true
	cfgs["gemma3"] = c
	return cfgs
}

// causal returns c without pooling: the forward-pass tests read logits,
// which embedding models do not produce.
func causal(c Config) Config {
	c.Pooling, c.NormalizeEmbeddings = PoolNone, false
	return c
}

func TestFamiliesMatchReference(t *testing.T) {
	for name, c := range familyConfigs() {
		c := causal(c)
		t.Run(name, func(t *testing.T) {
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			w := randomWeights(t, c, 21)
			ids := randomTokens(rand.New(rand.NewPCG(3, 9)), 24, c.VocabSize)
			ref := referenceLogits(t, w, ids)
			for _, kv := range []KVType{KVFloat32, KVFloat16} {
				m := newTestModel(t, w, WithHeadInt8(false), WithKVType(kv))
				st := []Step{{Seq: m.NewSequence(), Tokens: ids, AllLogits: true}}
				if err := m.Forward(context.Background(), st); err != nil {
					t.Fatal(err)
				}
				var sum, worst float64
				for i := range ids {
					got := st[0].Logits[i*c.VocabSize : (i+1)*c.VocabSize]
					for r, v := range ref[i] {
						d := math.Abs(float64(got[r]) - v)
						sum += d
						worst = max(worst, d)
					}
				}
				mean := sum / float64(len(ids)*c.VocabSize)
				t.Logf("kv %s: mean |diff| %.2g, max %.2g", kv, mean, worst)
				// int8 rounding flips from float order make single logits
				// differ a little; an fp16 cache of these random models
				// (large activations) moves many more.
				lim, worstLim := 2e-3, 0.15
				if kv == KVFloat16 {
					lim, worstLim = 0.1, 1
				}
				if mean > lim || worst > worstLim {
					t.Errorf("kv %s: logits differ from reference: mean %.2g, max %.2g", kv, mean, worst)
				}
			}
		})
	}
}

// TestFamiliesDecodeEqualsPrefill checks the KV cache paths (sliding
// windows, local RoPE tables, q/k norms) token by token against prefill.
func TestFamiliesDecodeEqualsPrefill(t *testing.T) {
	for name, c := range familyConfigs() {
		c := causal(c)
		t.Run(name, func(t *testing.T) {
			w := randomWeights(t, c, 5)
			m := newTestModel(t, w)
			ids := randomTokens(rand.New(rand.NewPCG(4, 4)), 17, c.VocabSize)
			pre := []Step{{Seq: m.NewSequence(), Tokens: ids, AllLogits: true}}
			if err := m.Forward(context.Background(), pre); err != nil {
				t.Fatal(err)
			}
			seq := m.NewSequence()
			for i, id := range ids {
				st := []Step{{Seq: seq, Tokens: []int{id}}}
				if err := m.Forward(context.Background(), st); err != nil {
					t.Fatal(err)
				}
				want := pre[0].Logits[i*c.VocabSize : (i+1)*c.VocabSize]
				if d := maxAbsDiff(st[0].Logits, want); d > 1e-4 {
					t.Fatalf("position %d: decode logits differ from prefill by %g", i, d)
				}
			}
		})
	}
}

func TestFamilyValidateNorms(t *testing.T) {
	c := familyConfigs()["qwen3"]
	w := randomWeights(t, c, 1)
	w.Layers[0].ProjNorm[LinO] = nil
	if err := w.Validate(); err == nil {
		t.Error("missing o_proj norm: got no error")
	}
	c = familyConfigs()["llama"]
	w = randomWeights(t, c, 1)
	w.Layers[1].AttnSubNorm = make([]float32, c.QDim())
	if err := w.Validate(); err == nil {
		t.Error("llama layer with a sub-norm: got no error")
	}
}

func ExampleConfig_Family() {
	for _, a := range []string{ArchBitNet, ArchBitNetB158, ArchLlama, ArchQwen3, ArchGemma3} {
		c := Config{Architecture: a}
		fmt.Println(a, c.Family(), c.SubNorms(), c.QKNorm(), c.SandwichNorms())
	}
	// Output:
	// BitNetForCausalLM bitnet true false false
	// BitnetForCausalLM bitnet-b1.58 true false false
	// LlamaForCausalLM llama false false false
	// Qwen3ForCausalLM qwen3 false true false
	// Gemma3ForCausalLM gemma3 false true true
}

func cosine(a []float32, b []float64) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * b[i]
		aa += float64(a[i]) * float64(a[i])
		bb += b[i] * b[i]
	}
	return ab / math.Sqrt(aa*bb)
}

func TestEmbedMatchesReference(t *testing.T) {
	for _, name := range []string{"qwen3", "gemma3"} {
		for _, pool := range []string{PoolLast, PoolMean} {
			c := familyConfigs()[name]
			c.Pooling, c.NormalizeEmbeddings, c.EmbedSuffix = pool, true, []int{c.VocabSize - 1}
			w := randomWeights(t, c, 8)
			m := newTestModel(t, w)
			ids := randomTokens(rand.New(rand.NewPCG(1, 8)), 30, c.VocabSize)
			got, err := m.Embed(context.Background(), append(ids, c.EmbedSuffix...))
			if err != nil {
				t.Fatal(err)
			}
			ref := referenceHidden(t, w, append(append([]int(nil), ids...), c.VocabSize-1))
			want := make([]float64, c.HiddenSize)
			for i := range ref {
				if pool == PoolLast && i != len(ref)-1 {
					continue
				}
				for e, v := range ref[i] {
					want[e] += v
				}
			}
			var norm float64
			for _, v := range got {
				norm += float64(v) * float64(v)
			}
			if cos := cosine(got, want); cos < 0.9999 || math.Abs(norm-1) > 1e-5 {
				t.Errorf("%s %s: cosine to reference %.6f (want >= 0.9999), |v|^2 = %.6f", name, pool, cos, norm)
			}
		}
	}
}

// TestPoolStepsInBatch mixes a pooled step with logits steps in one
// Forward: the logits are those of the steps alone.
func TestPoolStepsInBatch(t *testing.T) {
	c := causal(familyConfigs()["qwen3"])
	c.TieWordEmbeddings = false
	// A Qwen3 causal LM (no Pooling): pooled steps pool its last token.
	w := randomWeights(t, c, 3)
	m := newTestModel(t, w)
	r := rand.New(rand.NewPCG(2, 2))
	a, b := randomTokens(r, 9, c.VocabSize), randomTokens(r, 7, c.VocabSize)
	alone := []Step{{Seq: m.NewSequence(), Tokens: a, AllLogits: true}}
	if err := m.Forward(context.Background(), alone); err != nil {
		t.Fatal(err)
	}
	mixed := []Step{{Seq: m.NewSequence(), Tokens: b, Pool: true}, {Seq: m.NewSequence(), Tokens: a, AllLogits: true}}
	if err := m.Forward(context.Background(), mixed); err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(mixed[1].Logits, alone[0].Logits); d > 1e-5 {
		t.Errorf("logits next to a pooled step differ by %g", d)
	}
	if len(mixed[0].Logits) != 0 || len(mixed[0].Hidden) != c.HiddenSize {
		t.Errorf("pooled step: got %d logits and %d hidden, want 0 and %d", len(mixed[0].Logits), len(mixed[0].Hidden), c.HiddenSize)
	}
	ref := referenceHidden(t, w, b)
	var d float64
	for i, v := range ref[len(ref)-1] {
		d = max(d, math.Abs(v-float64(mixed[0].Hidden[i])))
	}
	if d > 1e-4 {
		t.Errorf("pooled step's last hidden state differs from the reference by %g", d)
	}
}

// TestEmbeddingModelHasNoHead: an embedding model refuses logits and keeps
// exact token embeddings.
func TestEmbeddingModelHasNoHead(t *testing.T) {
	c := familyConfigs()["qwen3"]
	w := randomWeights(t, c, 4)
	m := newTestModel(t, w)
	err := m.Forward(context.Background(), []Step{{Seq: m.NewSequence(), Tokens: []int{1, 2}}})
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "embedding model") {
		t.Errorf("logits from an embedding model: got %v, want ErrInput", err)
	}
	if m.head8 != nil || m.head != nil || m.embed.i8 != nil {
		t.Errorf("embedding model keeps a head (%v, %d floats) or int8 embeddings (%v)", m.head8 != nil, len(m.head), m.embed.i8 != nil)
	}
}
