package train

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// asFamily turns a 2B4T test config into one of the other trainable
// families: 1bitLLM (SiLU, inner_attn_ln/ffn_layernorm) or Llama-style
// BitNet (SiLU, no sub-norms).
func asFamily(c model.Config, f model.Family) model.Config {
	switch f {
	case model.FamilyBitNetB158:
		c.Architecture, c.HiddenAct = model.ArchBitNetB158, model.ActSiLU
	case model.FamilyLlama:
		c.Architecture, c.HiddenAct = model.ArchLlama, model.ActSiLU
	}
	return c
}

// TestGradCheckFamilies repeats the full-precision finite-difference check
// for the SiLU families, with and without sub-norms.
func TestGradCheckFamilies(t *testing.T) {
	for _, f := range []model.Family{model.FamilyBitNetB158, model.FamilyLlama} {
		c := asFamily(tinyConfig(false), f)
		p := newPool(2)
		defer p.close()
		e := newEngine[float64](c, false, p, 2, 5)
		initParams(e.lay, e.params, 1, 0.3)
		r := rand.New(rand.NewPCG(2, 3))
		for _, s := range e.lay.specs {
			if s.Norm {
				for i := s.Off; i < s.Off+s.N; i++ {
					e.params[i] = 1 + 0.3*r.NormFloat64()
				}
			}
		}
		tokens, targets := randTokens(r, 10, c.VocabSize), randTokens(r, 10, c.VocabSize)
		if _, err := e.forward(tokens, targets, 1); err != nil {
			t.Fatal(err)
		}
		e.backward()
		grad := append([]float64(nil), e.grads...)
		const h = 1e-5
		for _, s := range e.lay.specs {
			worst := 0.0
			for i := s.Off; i < s.Off+s.N; i++ {
				old := e.params[i]
				e.params[i] = old + h
				lp, _ := e.forward(tokens, targets, 1)
				e.params[i] = old - h
				lm, _ := e.forward(tokens, targets, 1)
				e.params[i] = old
				num := (lp - lm) / (2 * h)
				worst = max(worst, math.Abs(num-grad[i])/math.Max(1e-4, math.Abs(num)+math.Abs(grad[i])))
			}
			if worst > 1e-5 {
				t.Errorf("%s %s: worst relative gradient error %.3g, want < 1e-5", f, s.Name, worst)
			}
		}
	}
}

// TestExportFamilies trains a few QAT steps of each trainable family and
// exports it in the family's own Hugging Face format: the engine loads it
// (LoadHF recognises the family) and scores the trainer's batch with the
// trainer's loss; a packed llama export (transformers BitLinear:
// weight_scale = 1/s) gives the master export's logits exactly.
func TestExportFamilies(t *testing.T) {
	path, _ := tokenFile(t)
	for _, f := range []model.Family{model.FamilyBitNetB158, model.FamilyLlama} {
		t.Run(string(f), func(t *testing.T) {
			c := asFamily(smallConfig(), f)
			o := smallOptions()
			o.Batch = 1
			tr := newTestTrainer(t, path, c, o)
			runSteps(t, tr, 5)
			master := t.TempDir()
			if err := tr.Export(master, "F32", testTokenizer); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(master, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			var cfg struct {
				Archs []string          `json:"architectures"`
				Q     map[string]string `json:"quantization_config"`
			}
			if err := json.Unmarshal(raw, &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.Archs[0] != c.Architecture {
				t.Errorf("config.json architectures %v, want %s", cfg.Archs, c.Architecture)
			}
			in, tg := make([]int, o.Seq), make([]int, o.Seq)
			if err := tr.data.read(tr.data.TrainSeqs, in, tg, c.VocabSize); err != nil {
				t.Fatal(err)
			}
			wm, lm := logitsOf(t, master, in)
			if wm.Config.Family() != f {
				t.Fatalf("exported model loads as family %s, want %s", wm.Config.Family(), f)
			}
			want, err := tr.eng.forward(in, tg, 1)
			if err != nil {
				t.Fatal(err)
			}
			if nll := meanNLL(lm, tg, c.VocabSize); math.Abs(nll-want)/want > 1e-4 {
				t.Errorf("exported model loss %.6f, trainer loss %.6f", nll, want)
			}
			packed := t.TempDir()
			err = tr.ExportPacked(packed, "F32", "")
			if f == model.FamilyBitNetB158 {
				if !errors.Is(err, ErrOptions) {
					t.Errorf("packed 1bitLLM export: got %v, want ErrOptions", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			raw, _ = os.ReadFile(filepath.Join(packed, "config.json"))
			cfg.Q = nil
			if err := json.Unmarshal(raw, &cfg); err != nil || cfg.Q["linear_class"] != "bitlinear" {
				t.Errorf("packed llama quantization_config %v (err %v), want linear_class bitlinear", cfg.Q, err)
			}
			if _, lp := logitsOf(t, packed, in); !slices.Equal(lp, lm) {
				t.Errorf("packed llama logits differ from the master export's (%v vs %v)", lp[:3], lm[:3])
			}
		})
	}
}

func TestTrainableFamilies(t *testing.T) {
	c := smallConfig()
	c.Architecture, c.ProjNorms, c.Pooling = model.ArchQwen3, true, model.PoolLast
	if err := Trainable(c); !errors.Is(err, ErrOptions) {
		t.Errorf("qwen3: got %v, want ErrOptions", err)
	}
	c = asFamily(smallConfig(), model.FamilyLlama)
	c.RopeScaling = &model.RopeScaling{Type: "linear", Factor: 2}
	if err := Trainable(c); !errors.Is(err, ErrOptions) {
		t.Errorf("rope scaling: got %v, want ErrOptions", err)
	}
}

func meanNLL(logits []float32, targets []int, V int) float64 {
	var nll float64
	for i, y := range targets {
		row := logits[i*V : (i+1)*V]
		mx := slices.Max(row)
		var z float64
		for _, v := range row {
			z += math.Exp(float64(v - mx))
		}
		nll += math.Log(z) + float64(mx) - float64(row[y])
	}
	return nll / float64(len(targets))
}
