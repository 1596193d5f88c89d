package model

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
)

// TestGGUFRopeScalingLlama3 writes the tiny Llama3-8B-1.58-style model
// (llama3 rope_scaling) as GGUF: the file carries llama.cpp's rope_freqs
// tensor (its converter's per-frequency divisors) and rope.scaling.factor 1,
// and computes what the Hugging Face checkpoint does (the PyTorch golden
// numbers), read as our own file (the exact llama3 parameters from our
// config key) and as a foreign one (llama.cpp's keys and rope_freqs only).
// Without the scaling the same weights score differently, so the test
// tells them apart.
func TestGGUFRopeScalingLlama3(t *testing.T) {
	dir := filepath.Join(modelsDir, "tiny-llama3-bitlinear")
	g := loadGolden(t, dir)
	w, tok, err := LoadWeights(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := w.Config.RopeScaling
	if s == nil || s.Type != "llama3" {
		t.Fatalf("tiny-llama3-bitlinear: rope scaling %+v, want llama3", s)
	}
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := WriteGGUF(path, w, tok, WithFloatType(gguf.F32), WithScaleTensors(true)); err != nil {
		t.Fatal(err)
	}

	// llama.cpp's convert_hf_to_gguf.py (LlamaModel.generate_extra_tensors).
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	half := w.Config.HeadDim / 2
	got, err := readFloat(f, tensorRopeFreqs, []uint64{uint64(half)})
	if err != nil {
		t.Fatal(err)
	}
	arch, _ := f.String(keyArch)
	factor, err := f.Float32(arch + sfxRopeFactor)
	f.Close()
	if err != nil || factor != 1 {
		t.Errorf("%s: got %v, %v; want 1 (llama3 is all in %s)", arch+sfxRopeFactor, factor, err, tensorRopeFreqs)
	}
	old := float64(s.OriginalMaxPosition)
	for i := range half {
		freq := 1 / math.Pow(w.Config.RopeTheta, float64(2*i)/float64(w.Config.HeadDim))
		wave := 2 * math.Pi / freq
		want := 1.0
		switch {
		case wave < old/s.HighFreqFactor:
		case wave > old/s.LowFreqFactor:
			want = s.Factor
		default:
			smooth := (old/wave - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor)
			want = 1 / ((1-smooth)/s.Factor + smooth)
		}
		if math.Abs(float64(got[i])-want) > 1e-5*want {
			t.Errorf("rope_freqs[%d] = %v, want %v", i, got[i], want)
		}
	}
	if !slices.ContainsFunc(got, func(v float32) bool { return v != 1 && v != float32(s.Factor) }) || got[0] != 1 || got[half-1] != float32(s.Factor) {
		t.Errorf("rope_freqs %v: want 1, interpolated and %v factors (the test model exercises all three)", got, s.Factor)
	}

	foreign := filepath.Join(t.TempDir(), "foreign.gguf")
	rewriteGGUF(t, path, foreign, func(kv *gguf.KV) bool { return !strings.HasPrefix(kv.Key, "bitnet-mesh.") }, nil)
	ctx := context.Background()
	logits := func(m *Model) []float32 { // modelLogits without closing m
		t.Helper()
		st := []Step{{Seq: m.NewSequence(), Tokens: g.Windows[0].Tokens, AllLogits: true}}
		if err := m.Forward(ctx, st); err != nil {
			t.Fatal(err)
		}
		return st[0].Logits
	}
	for _, tc := range []struct {
		name, path, typ string
	}{
		{"own file", path, "llama3"},
		{"llama.cpp keys only", foreign, "factors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := loadGoldenModel(t, tc.path, WithHeadInt8(false), WithKVType(KVFloat32))
			if sc := m.Config().RopeScaling; sc == nil || sc.Type != tc.typ {
				t.Fatalf("rope scaling read back: got %+v, want type %s", sc, tc.typ)
			}
			// The file's weights (its linears are Q8_0/F16 fallbacks at
			// these widths: fp16 block scales) under transformers' exact
			// llama3 RoPE: the same logits.
			fileWeights := func(sc *RopeScaling) *Model {
				fw, _, err := ReadGGUF(tc.path)
				if err != nil {
					t.Fatal(err)
				}
				fw.Config.RopeScaling = sc
				return newTestModel(t, fw, WithHeadInt8(false), WithKVType(KVFloat32))
			}
			hf := fileWeights(s)
			if d := maxAbsDiff(logits(m), logits(hf)); d > 1e-4 {
				t.Errorf("logits differ from the file's weights under HF's llama3 RoPE by %g", d)
			}
			unscaled := fileWeights(nil)
			if d := maxAbsDiff(logits(m), logits(unscaled)); d < 1e-2 {
				t.Errorf("logits with and without rope scaling differ by %g only: the test does not exercise it", d)
			}
			// And the PyTorch reference's perplexity, within the fp16
			// block scales' error.
			for wi, win := range g.Windows {
				res, err := m.Perplexity(ctx, win.Tokens, 0)
				if err != nil {
					t.Fatal(err)
				}
				if rel := math.Abs(res.PPL-win.PPL) / win.PPL; rel > 1e-3 {
					t.Errorf("window %d: ppl %.6g, PyTorch %.6g (rel %.2g > 1e-3)", wi, res.PPL, win.PPL, rel)
				}
				u, err := unscaled.Perplexity(ctx, win.Tokens, 0)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("window %d: ppl %.6g, PyTorch %.6g, without the scaling %.6g", wi, res.PPL, win.PPL, u.PPL)
			}
		})
	}
}

// TestGGUFRopeScalingLinear: linear rope scaling is llama.cpp's
// rope.scaling.type/factor keys, read back from a foreign file too.
func TestGGUFRopeScalingLinear(t *testing.T) {
	c := ggufConfig256(false)
	c.RopeScaling = &RopeScaling{Type: "linear", Factor: 4}
	w := ggufWeights(t, c, 5)
	src := filepath.Join(t.TempDir(), "m.gguf")
	if err := WriteGGUF(src, w, nil); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "foreign.gguf")
	rewriteGGUF(t, src, dst, func(kv *gguf.KV) bool { return !strings.HasPrefix(kv.Key, "bitnet-mesh.") }, nil)
	for _, p := range []string{src, dst} {
		got, _, err := ReadGGUF(p)
		if err != nil {
			t.Fatal(err)
		}
		if sc := got.Config.RopeScaling; sc == nil || sc.Type != "linear" || sc.Factor != 4 {
			t.Errorf("%s: rope scaling %+v, want linear 4", filepath.Base(p), sc)
		}
	}
}

// TestGGUFRopeFreqsRefused: a rope_freqs tensor of the wrong length, or
// with a zero or NaN factor, is a config error at read, not a wrong model.
func TestGGUFRopeFreqsRefused(t *testing.T) {
	c := ggufConfig256(false)
	w := ggufWeights(t, c, 6)
	src := filepath.Join(t.TempDir(), "m.gguf")
	if err := WriteGGUF(src, w, nil); err != nil {
		t.Fatal(err)
	}
	half := c.HeadDim / 2
	for name, fs := range map[string][]float32{
		"short": make([]float32, half-1),
		"zero":  make([]float32, half),
		"nan":   append(slices.Repeat([]float32{1}, half-1), float32(math.NaN())),
	} {
		t.Run(name, func(t *testing.T) {
			data, err := gguf.EncodeFloat32(gguf.F32, fs)
			if err != nil {
				t.Fatal(err)
			}
			wr, err := func() (*gguf.Writer, error) {
				f, err := gguf.Open(src)
				if err != nil {
					return nil, err
				}
				defer f.Close()
				wr, err := gguf.Rewrite(f, func(kv *gguf.KV) bool { return !strings.HasPrefix(kv.Key, "bitnet-mesh.") }, nil)
				if err != nil {
					return nil, err
				}
				return wr, wr.AddTensor(tensorRopeFreqs, gguf.F32, []uint64{uint64(len(fs))}, data)
			}()
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(t.TempDir(), "bad.gguf")
			if err := wr.WriteFile(dst); err != nil {
				t.Fatal(err)
			}
			if _, _, err := ReadGGUF(dst); err == nil {
				t.Errorf("rope_freqs %v: read without an error", fs)
			}
		})
	}
}
