package train

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/safetensors"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// logitsOf loads an HF directory and returns the logits of every token of in.
func logitsOf(t *testing.T, dir string, in []int) (*model.Weights, []float32) {
	t.Helper()
	w, err := model.LoadHF(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.New(w, nil, model.WithHeadInt8(false))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	st := []model.Step{{Seq: m.NewSequence(), Tokens: in, AllLogits: true}}
	if err := m.Forward(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	return w, st[0].Logits
}

func layerMatrices(L model.Layer) []*ternary.Matrix {
	return []*ternary.Matrix{L.Q, L.K, L.V, L.O, L.Gate, L.Up, L.Down}
}

// TestExportPacked checks that the packed export loads into exactly the
// ternary matrices the master export loads into, so both give bit-identical
// logits, and that those logits score like the trainer's own forward pass.
func TestExportPacked(t *testing.T) {
	path, _ := tokenFile(t)
	for _, tc := range []struct {
		name  string
		tied  bool
		dtype string
	}{
		{"tied-f32", true, "F32"},
		{"untied-f32", false, "F32"},
		{"tied-bf16", true, "BF16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := smallConfig()
			c.TieWordEmbeddings = tc.tied
			o := smallOptions()
			o.Batch = 1
			tr := newTestTrainer(t, path, c, o)
			runSteps(t, tr, 5)
			master, packed := t.TempDir(), filepath.Join(t.TempDir(), "new", "packed")
			if err := tr.Export(master, "F32", ""); err != nil {
				t.Fatal(err)
			}
			if err := tr.ExportPacked(packed, tc.dtype, testTokenizer); err != nil {
				t.Fatal(err)
			}
			checkPackedFiles(t, packed, c)
			in, tg := make([]int, o.Seq), make([]int, o.Seq)
			if err := tr.data.read(tr.data.TrainSeqs, in, tg, c.VocabSize); err != nil {
				t.Fatal(err)
			}
			wm, lm := logitsOf(t, master, in)
			wp, lp := logitsOf(t, packed, in)
			for li := range wm.Layers {
				a, b := layerMatrices(wm.Layers[li]), layerMatrices(wp.Layers[li])
				for k := range a {
					if a[k].Scale != b[k].Scale || !slices.Equal(a[k].Codes, b[k].Codes) {
						t.Errorf("layer %d linear %d: packed scale %v, master %v (codes equal: %v)", li, k, b[k].Scale, a[k].Scale, slices.Equal(a[k].Codes, b[k].Codes))
					}
				}
			}
			if tc.dtype == "F32" {
				if !slices.Equal(lm, lp) {
					t.Errorf("packed logits differ from the master export's (first %v vs %v)", lp[:3], lm[:3])
				}
			} else {
				var maxd float64
				for i := range lm {
					maxd = max(maxd, math.Abs(float64(lm[i]-lp[i])))
				}
				if maxd > 0.05 {
					t.Errorf("BF16 packed logits differ from F32 master by %.3g, want <= 0.05", maxd)
				}
			}
			want, err := tr.eng.forward(in, tg, 1)
			if err != nil {
				t.Fatal(err)
			}
			var nll float64
			V := c.VocabSize
			for i, y := range tg {
				row := lp[i*V : (i+1)*V]
				mx := slices.Max(row)
				var z float64
				for _, v := range row {
					z += math.Exp(float64(v - mx))
				}
				nll += math.Log(z) + float64(mx) - float64(row[y])
			}
			nll /= float64(len(tg))
			tol := 1e-4
			if tc.dtype == "BF16" {
				tol = 1e-2
			}
			if d := math.Abs(nll-want) / want; d > tol {
				t.Errorf("packed model loss %.6f, trainer loss %.6f: relative difference %.2g, want < %g", nll, want, d, tol)
			}
		})
	}
}

// checkPackedFiles checks the offline quantization_config and the tensors'
// dtypes and shapes of a packed export.
func checkPackedFiles(t *testing.T, dir string, c model.Config) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Q map[string]string `json:"quantization_config"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	wantQ := map[string]string{"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "offline"}
	for k, v := range wantQ {
		if cfg.Q[k] != v {
			t.Errorf("config.json quantization_config.%s = %q, want %q", k, cfg.Q[k], v)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err != nil {
		t.Error(err)
	}
	f, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	q, _ := f.Tensor("model.layers.0.self_attn.q_proj.weight")
	if q.DType != safetensors.U8 || !slices.Equal(q.Shape, []int{c.QDim() / 4, c.HiddenSize}) {
		t.Errorf("q_proj.weight: got %s %v, want U8 [%d %d]", q.DType, q.Shape, c.QDim()/4, c.HiddenSize)
	}
	s, ok := f.Tensor("model.layers.0.mlp.down_proj.weight_scale")
	if !ok || s.DType != safetensors.F32 || s.NumElements() != 1 {
		t.Errorf("down_proj.weight_scale: got %s %v (present %v), want F32 [1]", s.DType, s.Shape, ok)
	}
	// embedding, final norm, per layer 4 norms and 7 x (weight, weight_scale), untied head
	want := 2 + c.NumLayers*(4+2*7)
	if !c.TieWordEmbeddings {
		want++
	}
	if n := len(f.Names()); n != want {
		t.Errorf("got %d tensors, want %d", n, want)
	}
}

func TestExportPackedErrors(t *testing.T) {
	path, _ := tokenFile(t)
	tr := newTestTrainer(t, path, smallConfig(), smallOptions())
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := tr.ExportPacked(filepath.Join(file, "sub"), "F32", ""); err == nil {
		t.Error("export under a regular file: got nil error")
	}
	if err := tr.ExportPacked(t.TempDir(), "F16", ""); err == nil {
		t.Error("dtype F16: got nil error")
	}
	if err := tr.ExportPacked(t.TempDir(), "F32", filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("missing tokenizer: got nil error")
	}

	fp := smallOptions()
	fp.FullPrec = true
	tf := newTestTrainer(t, path, smallConfig(), fp)
	if err := tf.ExportPacked(t.TempDir(), "F32", ""); !errors.Is(err, ErrOptions) {
		t.Errorf("full-precision run: got %v, want ErrOptions", err)
	}

	c := smallConfig()
	c.NumKVHeads, c.NumHeads, c.HeadDim = 1, 1, 6 // k_proj has 6 rows: not a multiple of 4
	odd := newTestTrainer(t, path, c, smallOptions())
	dir := filepath.Join(t.TempDir(), "odd")
	if err := odd.ExportPacked(dir, "F32", ""); err == nil {
		t.Error("6-row k_proj: got nil error")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed export left %s behind (stat: %v)", dir, err)
	}
}
