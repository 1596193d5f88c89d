package quantizer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// smallCalib keeps the evaluation short under -race.
func smallCalib() *Calibration { return &Calibration{MaxTokens: 48, ContextLength: 32} }

// logitsOf runs tokens through the model at path (HF dir or GGUF) and
// returns the logits of every position.
func logitsOf(t *testing.T, path string, tokens []int) []float32 {
	t.Helper()
	m, err := model.Load(path)
	if err != nil {
		t.Fatalf("model.Load(%s): %v", path, err)
	}
	defer m.Close()
	st := []model.Step{{Seq: m.NewSequence(), Tokens: tokens, AllLogits: true}}
	if err := m.Forward(context.Background(), st); err != nil {
		t.Fatalf("Forward: %v", err)
	}
	return st[0].Logits
}

// download writes a version's GGUF blob to a file.
func download(t *testing.T, st *registry.Store, v registry.Version) string {
	t.Helper()
	if len(v.Files) != 1 || v.Files[0].Path != ggufFileName {
		t.Fatalf("version files %+v, want one %s", v.Files, ggufFileName)
	}
	rc, _, err := st.OpenBlob(context.Background(), v.Files[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	path := filepath.Join(t.TempDir(), "out.gguf")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestQuantizeFromRegistry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		packed bool
		format registry.Format
		target registry.QuantType
	}{
		{"master to TQ2_0", false, registry.FormatHFSafetensors, ""},
		{"master to TQ1_0", false, registry.FormatHFSafetensors, registry.QuantTQ10},
		{"packed to TQ2_0", true, registry.FormatHFPacked, registry.QuantTQ20},
		{"master to I2_S", false, registry.FormatHFSafetensors, registry.QuantI2S},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			dir := filepath.Join(t.TempDir(), "ckpt")
			writeCheckpoint(t, dir, tc.packed, 1)
			src := e.push(t, "tiny", dir, tc.format)
			ctx := context.Background()
			j, err := e.q.Create(ctx, Request{Model: "tiny", Target: tc.target, Output: Output{Name: "tiny-tq", Aliases: []string{"prod"}}, Calibration: smallCalib()})
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if j.State != StateQueued || j.Request.Model != "tiny@1" || j.Request.Target == "" {
				t.Errorf("created job: state %v model %q target %q, want queued tiny@1 with a target", j.State, j.Request.Model, j.Request.Target)
			}
			j = wait(t, e.q, j.ID)
			if j.State != StateSucceeded {
				t.Fatalf("state %v (err %v), want succeeded", j.State, j.Err)
			}
			want := tc.target
			if want == "" {
				want = registry.QuantTQ20
			}
			if j.Result == nil || j.Result.String() != "tiny-tq@1" {
				t.Fatalf("result %v, want tiny-tq@1", j.Result)
			}
			v, err := e.store.Resolve(ctx, "tiny-tq:prod")
			if err != nil {
				t.Fatalf("Resolve(tiny-tq:prod): %v", err)
			}
			md := v.Metadata
			if md.Format != registry.FormatGGUF || md.QuantType != want || md.Architecture != model.ArchBitNet ||
				md.Lineage.Source != registry.SourceQuantizer || md.Lineage.JobID != j.ID ||
				md.Lineage.Parent == nil || md.Lineage.Parent.String() != src.Ref.String() ||
				md.ContextLength != 512 || md.VocabSize != 600 {
				t.Errorf("metadata %+v lineage %+v, want gguf %s BitNetForCausalLM from %s by job %s", md, md.Lineage, want, src.Ref, j.ID)
			}
			if md.Lineage.Metrics["perplexity_after"] != j.Report.PerplexityAfter || !json.Valid([]byte(md.Lineage.ConfigJSON)) {
				t.Errorf("lineage metrics %v config %q, want the report's perplexity and JSON", md.Lineage.Metrics, md.Lineage.ConfigJSON)
			}
			out := download(t, e.store, v)

			// The GGUF holds what the engine makes of the source at load time:
			// the same logits up to the fp16 rounding of the scales.
			tokens := []int{598, 5, 77, 300, 12, 45, 599, 100, 3, 250}
			a, b := logitsOf(t, dir, tokens), logitsOf(t, out, tokens)
			var maxDiff, maxAbs float64
			for i := range a {
				maxDiff = max(maxDiff, math.Abs(float64(a[i]-b[i])))
				maxAbs = max(maxAbs, math.Abs(float64(a[i])))
			}
			if maxDiff > 0.02*maxAbs {
				t.Errorf("logits of the GGUF differ from the source's by up to %g (largest logit %g), want within 2%%", maxDiff, maxAbs)
			}
			checkReport(t, j.Report, tc.packed, uint64(v.SizeBytes))
			if j.Report.Family != string(model.FamilyBitNet) {
				t.Errorf("report family %q, want %s (issue 12: the report names the family)", j.Report.Family, model.FamilyBitNet)
			}
			for _, l := range j.Report.Linears {
				if got := l.GGUF.Type; got != ggufType(want) {
					t.Errorf("%s: GGUF type %v, want %v (the target holds every width here)", l.Name, got, ggufType(want))
				}
			}
		})
	}
}

func checkReport(t *testing.T, r Report, packed bool, resultSize uint64) {
	t.Helper()
	if len(r.Linears) != 14 {
		t.Fatalf("%d linears in the report, want 14", len(r.Linears))
	}
	if got, want := r.Linears[0].Name, "model.layers.0.self_attn.q_proj.weight"; got != want {
		t.Errorf("first linear %q, want %q", got, want)
	}
	if got, want := r.Linears[13].Name, "model.layers.1.mlp.down_proj.weight"; got != want {
		t.Errorf("last linear %q, want %q", got, want)
	}
	for _, l := range r.Linears {
		if l.Rows <= 0 || l.Cols%256 != 0 || l.Scale <= 0 || l.ZerosFraction < 0.2 || l.ZerosFraction > 0.45 {
			t.Errorf("linear %+v: want positive shape and scale, about 31%% zeros (Gaussian weights)", l)
		}
		if packed && l.RelativeError != 0 {
			t.Errorf("linear %s: relative error %g, want 0 for packed input", l.Name, l.RelativeError)
		}
		if !packed && (l.RelativeError < 0.3 || l.RelativeError > 0.7) {
			t.Errorf("linear %s: relative error %g, want about 0.5 for Gaussian weights", l.Name, l.RelativeError)
		}
	}
	const params = 600*256 + 256 + 2*(256*3+512+256*256+2*128*256+256*256+3*512*256)
	if r.ParameterCount != params {
		t.Errorf("parameter count %d, want %d", r.ParameterCount, params)
	}
	if r.ResultSizeBytes != resultSize || r.SourceSizeBytes <= r.ResultSizeBytes/2 {
		t.Errorf("sizes: source %d result %d, want result %d", r.SourceSizeBytes, r.ResultSizeBytes, resultSize)
	}
	if r.CalibrationTokens != 46 {
		t.Errorf("calibration tokens %d, want 46 (48 tokens in windows of 32: 31+15)", r.CalibrationTokens)
	}
	t.Logf("report: ppl %.4f -> %.4f, KL %.5f, top1 %.3f, %d tokens, linear0 %+v", r.PerplexityBefore, r.PerplexityAfter, r.MeanKL, r.Top1Agreement, r.CalibrationTokens, r.Linears[0])
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	if !finite(r.PerplexityBefore) || !finite(r.PerplexityAfter) || r.PerplexityBefore <= 1 || r.PerplexityAfter <= 1 ||
		!finite(r.MeanKL) || r.MeanKL < 0 || r.Top1Agreement < 0 || r.Top1Agreement > 1 {
		t.Errorf("calibration report %+v: want perplexities > 1, KL >= 0, agreement in [0,1]", r)
	}
	if packed {
		// The reference and the engine compute the same model: they agree up
		// to scale rounding and summation order.
		if rel := math.Abs(r.PerplexityAfter/r.PerplexityBefore - 1); rel > 0.01 || r.MeanKL > 1e-3 || r.Top1Agreement < 0.9 {
			t.Errorf("packed input: perplexity %g before, %g after, KL %g, agreement %g: want the same model", r.PerplexityBefore, r.PerplexityAfter, r.MeanKL, r.Top1Agreement)
		}
	} else if r.MeanKL <= 1e-4 {
		t.Errorf("master input: KL %g, want ternarisation to change the distribution", r.MeanKL)
	}
}

func TestQuantizeLocalGGUFAndCalibrationOff(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "ckpt")
	writeCheckpoint(t, dir, false, 2)
	ctx := context.Background()
	j, err := e.q.Create(ctx, Request{Path: dir, Target: registry.QuantTQ10, Calibration: &Calibration{Disabled: true}})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	j = wait(t, e.q, j.ID)
	if j.State != StateSucceeded || j.Result.String() != DefaultOutputName+"@1" {
		t.Fatalf("state %v result %v (err %v), want succeeded as %s@1", j.State, j.Result, j.Err, DefaultOutputName)
	}
	if j.Report.CalibrationTokens != 0 || j.Report.PerplexityAfter != 0 || len(j.Report.Linears) != 14 {
		t.Errorf("report %+v: want linears only", j.Report)
	}
	v, err := e.store.Resolve(ctx, DefaultOutputName)
	if err != nil {
		t.Fatal(err)
	}
	if v.Metadata.Lineage.Parent != nil {
		t.Errorf("lineage parent %v, want none for a local source", v.Metadata.Lineage.Parent)
	}
	// A GGUF source (TQ1_0 -> TQ2_0) keeps the ternary weights: error 0.
	gg := download(t, e.store, v)
	j, err = e.q.Create(ctx, Request{Path: gg, Output: Output{Name: "again"}, Calibration: smallCalib()})
	if err != nil {
		t.Fatalf("Create from GGUF: %v", err)
	}
	j = wait(t, e.q, j.ID)
	if j.State != StateSucceeded {
		t.Fatalf("state %v (err %v), want succeeded", j.State, j.Err)
	}
	for _, l := range j.Report.Linears {
		if !strings.HasPrefix(l.Name, "blk.") || l.RelativeError != 0 {
			t.Errorf("linear %+v: want a GGUF name and error 0", l)
		}
	}
	if j.Report.MeanKL > 1e-3 {
		t.Errorf("GGUF input: KL %g, want ~0", j.Report.MeanKL)
	}
}

func TestGoldenTinyModelsNarrowWidths(t *testing.T) {
	// The engine's golden tiny models have 64- and 128-wide linears, which a
	// TQ block (256 weights of a row) cannot hold: they fall back to Q8_0
	// (64) and bitnet.cpp's I2_S (128), and the report says so.
	e := newEnv(t)
	for _, name := range []string{"tiny-gqa-tied-f32", "tiny-gqa-packed"} {
		j, err := e.q.Create(context.Background(), Request{Path: goldenDir(name), Calibration: smallCalib()})
		if err != nil {
			t.Fatalf("Create(%s): %v", name, err)
		}
		j = wait(t, e.q, j.ID)
		if j.State != StateSucceeded {
			t.Fatalf("%s: state %v (err %v), want succeeded", name, j.State, j.Err)
		}
		if len(j.Report.Linears) != 14 || j.Report.GGUFArch != "bitnet-b1.58" {
			t.Fatalf("%s: %d linears, arch %q; want 14 and bitnet-b1.58", name, len(j.Report.Linears), j.Report.GGUFArch)
		}
		for _, l := range j.Report.Linears {
			want := gguf.Q8_0
			if l.Cols == 128 {
				want = gguf.I2_S
			}
			if l.GGUF.Type != want || !strings.Contains(l.GGUF.Reason, fmt.Sprintf("width %d is not a multiple of 256", l.Cols)) {
				t.Errorf("%s %s: GGUF %+v, want %v with a reason", name, l.Name, l.GGUF, want)
			}
		}
		// The packed model is ternary already: only the file format lies
		// between before and after.
		if name == "tiny-gqa-packed" && j.Report.MeanKL > 1e-3 {
			t.Errorf("%s: KL %g, want ~0 (fallback types hold the ternary weights)", name, j.Report.MeanKL)
		}
	}
}
