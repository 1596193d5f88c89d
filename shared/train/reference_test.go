package train

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/safetensors"
)

// Golden data from the independent PyTorch reference
// (tools/reference/train_golden.py; definitions in tools/reference/TRAINING.md).
const refDir = "../../testdata/train"

type refBatch struct {
	Tokens  []int   `json:"tokens"` // BATCH*SEQ+1 contiguous ids
	Inputs  [][]int `json:"inputs"`
	Targets [][]int `json:"targets"`
}

type refGolden struct {
	LossSTE      float64   `json:"loss_ste"`
	LossFP       float64   `json:"loss_fp"`
	LossFP64     float64   `json:"loss_fp64"`
	GradNormSTE  float64   `json:"grad_norm_ste"`
	GradNormFP   float64   `json:"grad_norm_fp"`
	StepsSTE     []float64 `json:"steps_ste"`
	StepsFP      []float64 `json:"steps_fp"`
	StepNormsSTE []float64 `json:"step_grad_norms_ste"`
	StepNormsFP  []float64 `json:"step_grad_norms_fp"`
	LR           []float64 `json:"lr"`
	Recipe       struct {
		Steps       int     `json:"steps"`
		LR          float64 `json:"lr"`
		WeightDecay float64 `json:"weight_decay"`
		Clip        float64 `json:"clip"`
		WarmupFrac  float64 `json:"warmup_frac"`
		MinLRFrac   float64 `json:"min_lr_frac"`
	} `json:"recipe"`
}

type reference struct {
	cfg    model.Config
	batch  refBatch
	golden refGolden
	init   map[string][]float64
}

func loadReference(t *testing.T) *reference {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(refDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	r := &reference{}
	if r.cfg, err = model.ParseConfig(raw); err != nil {
		t.Fatal(err)
	}
	readJSON(t, "batch.json", &r.batch)
	readJSON(t, "golden.json", &r.golden)
	r.init = readTensors(t, "init.safetensors")
	return r
}

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(refDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// readTensors reads an F32 or F64 safetensors file into float64 slices.
func readTensors(t *testing.T, name string) map[string][]float64 {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(refDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]float64{}
	for _, n := range f.Names() {
		ts, _ := f.Tensor(n)
		var v []float64
		switch ts.DType {
		case safetensors.F64:
			v = make([]float64, len(ts.Data)/8)
			for i := range v {
				v[i] = math.Float64frombits(binary.LittleEndian.Uint64(ts.Data[8*i:]))
			}
		default:
			f32, err := ts.Float32()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			v = make([]float64, len(f32))
			for i, x := range f32 {
				v[i] = float64(x)
			}
		}
		out[n] = v
	}
	return out
}

// setParams copies the reference tensors into a flat parameter vector.
func setParams[F Float](t *testing.T, lay layout, dst []F, src map[string][]float64) {
	t.Helper()
	if len(src) != len(lay.specs) {
		t.Fatalf("reference has %d tensors, layout %d", len(src), len(lay.specs))
	}
	for _, s := range lay.specs {
		v, ok := src[s.Name]
		if !ok || len(v) != s.N {
			t.Fatalf("tensor %s: got %d values (present %v), want %d", s.Name, len(v), ok, s.N)
		}
		for i, x := range v {
			dst[s.Off+i] = F(x)
		}
	}
}

func (r *reference) flatBatch() (inputs, targets []int) {
	for b := range r.batch.Inputs {
		inputs = append(inputs, r.batch.Inputs[b]...)
		targets = append(targets, r.batch.Targets[b]...)
	}
	return inputs, targets
}

func relDiff(got, want float64) float64 { return math.Abs(got-want) / math.Abs(want) }

// checkGrads compares per tensor ||got - want|| / ||want||.
func checkGrads[F Float](t *testing.T, lay layout, got []F, want map[string][]float64, tol float64) {
	t.Helper()
	worst, worstName := 0.0, ""
	for _, s := range lay.specs {
		w := want[s.Name]
		var d2, n2 float64
		for i, x := range w {
			d := float64(got[s.Off+i]) - x
			d2 += d * d
			n2 += x * x
		}
		if e := math.Sqrt(d2 / n2); e > worst {
			worst, worstName = e, s.Name
		}
	}
	t.Logf("worst gradient relative error %.3g (%s)", worst, worstName)
	if worst > tol {
		t.Errorf("gradient of %s: relative error %.3g, want < %g", worstName, worst, tol)
	}
}

func gradsNorm[F Float](g []F) float64 {
	var s float64
	for _, v := range g {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s)
}

// TestReferenceLossAndGradients: same weights and batch as the PyTorch
// reference give the same loss and gradients.
func TestReferenceLossAndGradients(t *testing.T) {
	r := loadReference(t)
	inputs, targets := r.flatBatch()
	B, T := len(r.batch.Inputs), len(r.batch.Inputs[0])
	p := newPool(2, kernels.FloatsFor(""))
	defer p.close()
	cases := []struct {
		name           string
		quant          bool
		loss, gradNorm float64
		grads          string
	}{
		{"fp", false, r.golden.LossFP, r.golden.GradNormFP, "grads_fp.safetensors"},
		{"ste", true, r.golden.LossSTE, r.golden.GradNormSTE, "grads_ste.safetensors"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine[float32](r.cfg, tc.quant, p, B, T)
			setParams(t, e.lay, e.params, r.init)
			e.wqStale = true
			loss, err := e.forward(inputs, targets, 1)
			if err != nil {
				t.Fatal(err)
			}
			clear(e.grads)
			e.backward()
			if d := relDiff(loss, tc.loss); d > 1e-4 {
				t.Errorf("loss: got %.7f, want %.7f (relative error %.3g)", loss, tc.loss, d)
			}
			if d := relDiff(gradsNorm(e.grads), tc.gradNorm); d > 1e-3 {
				t.Errorf("gradient norm: got %.7f, want %.7f", gradsNorm(e.grads), tc.gradNorm)
			}
			checkGrads(t, e.lay, e.grads, readTensors(t, tc.grads), 1e-3)
		})
	}
	t.Run("fp64", func(t *testing.T) {
		e := newEngine[float64](r.cfg, false, p, B, T)
		setParams(t, e.lay, e.params, r.init)
		loss, err := e.forward(inputs, targets, 1)
		if err != nil {
			t.Fatal(err)
		}
		clear(e.grads)
		e.backward()
		if d := relDiff(loss, r.golden.LossFP64); d > 1e-9 {
			t.Errorf("loss: got %.12f, want %.12f (relative error %.3g)", loss, r.golden.LossFP64, d)
		}
		checkGrads(t, e.lay, e.grads, readTensors(t, "grads_fp64.safetensors"), 1e-6)
	})
}

// TestReferenceSteps: 20 AdamW steps on the reference batch (via Trainer,
// from the reference's initial weights) track the reference's losses.
func TestReferenceSteps(t *testing.T) {
	r := loadReference(t)
	T := len(r.batch.Inputs[0])
	// The batch is one contiguous run of B*T+1 tokens, so a token file of it
	// is a dataset of exactly the reference's B sequences.
	path := filepath.Join(t.TempDir(), "batch.tokens")
	buf := make([]byte, 4*len(r.batch.Tokens))
	for i, id := range r.batch.Tokens {
		binary.LittleEndian.PutUint32(buf[4*i:], uint32(id))
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	rc := r.golden.Recipe
	for _, tc := range []struct {
		name   string
		fp     bool
		losses []float64
		norm0  float64
	}{
		{"ste", false, r.golden.StepsSTE, r.golden.StepNormsSTE[0]},
		{"fp", true, r.golden.StepsFP, r.golden.StepNormsFP[0]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := OpenDataset(path, T, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			o := DefaultOptions()
			o.Steps, o.Batch, o.Seq, o.Threads = rc.Steps, len(r.batch.Inputs), T, 2
			o.LR, o.WeightDecay, o.ClipNorm = rc.LR, rc.WeightDecay, rc.Clip
			o.WarmupFrac, o.MinLRFrac, o.ValFrac, o.FullPrec = rc.WarmupFrac, rc.MinLRFrac, 0, tc.fp
			tr, err := New(r.cfg, d, o)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			setParams(t, tr.eng.lay, tr.eng.params, r.init)
			tr.eng.wqStale = true
			worst := 0.0
			for i, want := range tc.losses {
				res, err := tr.Step(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if d := relDiff(res.LR, r.golden.LR[i]); d > 1e-12 {
					t.Errorf("step %d: lr got %v, want %v", i+1, res.LR, r.golden.LR[i])
				}
				if i == 0 && relDiff(res.GradNorm, tc.norm0) > 1e-3 {
					t.Errorf("step 1: gradient norm got %v, want %v", res.GradNorm, tc.norm0)
				}
				dl := relDiff(res.Loss, want)
				worst = max(worst, dl)
				if dl > 0.01 {
					t.Errorf("step %d: loss got %.5f, want %.5f (relative error %.3g > 1%%)", i+1, res.Loss, want, dl)
				}
			}
			t.Logf("worst step loss relative error %.3g", worst)
		})
	}
}
