package train

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

const (
	testTokenizer = "../../testdata/tokenizer/opticks-bpe600.json"
	testCorpus    = "testdata/opticks-30k.txt"
)

// smallConfig is a vocab-600 model that trains in milliseconds per step.
func smallConfig() model.Config {
	return model.Config{
		Architecture: model.ArchBitNet, VocabSize: 600, HiddenSize: 16, IntermediateSize: 32,
		NumLayers: 2, NumHeads: 2, NumKVHeads: 1, HeadDim: 8, MaxPositions: 64,
		RopeTheta: 500000, RMSNormEps: 1e-5, HiddenAct: "relu2", TieWordEmbeddings: true, BOSTokenID: -1,
	}
}

func smallOptions() Options {
	o := DefaultOptions()
	o.Steps, o.Batch, o.Seq, o.LR, o.Threads = 8, 4, 16, 1e-2, 2
	return o
}

// tokenFile tokenizes the test corpus into a temporary token file.
func tokenFile(t testing.TB) (string, *tokenizer.Tokenizer) {
	t.Helper()
	tok, err := tokenizer.Load(testTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "corpus.tokens")
	if _, err := Tokenize(context.Background(), testCorpus, dst, tok, -1); err != nil {
		t.Fatal(err)
	}
	return dst, tok
}

func newTestTrainer(t testing.TB, path string, c model.Config, o Options) *Trainer {
	t.Helper()
	d, err := OpenDataset(path, o.Seq, o.ValFrac)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	tr, err := New(c, d, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func runSteps(t testing.TB, tr *Trainer, n int) []StepResult {
	t.Helper()
	var out []StepResult
	for i := 0; i < n; i++ {
		r, err := tr.Step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestDeterministicAcrossThreads(t *testing.T) {
	path, _ := tokenFile(t)
	for _, full := range []bool{false, true} {
		var ref []float32
		for _, threads := range []int{1, 2, 5} {
			o := smallOptions()
			o.Threads, o.FullPrec, o.Accum = threads, full, 2
			tr := newTestTrainer(t, path, smallConfig(), o)
			runSteps(t, tr, 3)
			if ref == nil {
				ref = slices.Clone(tr.Params())
				continue
			}
			if !slices.Equal(ref, tr.Params()) {
				t.Errorf("full_precision=%v: weights after 3 steps with %d threads differ from 1 thread", full, threads)
			}
		}
	}
}

func TestResumeBitwise(t *testing.T) {
	path, _ := tokenFile(t)
	o := smallOptions()
	o.Steps = 6
	full := newTestTrainer(t, path, smallConfig(), o)
	runSteps(t, full, 6)

	first := newTestTrainer(t, path, smallConfig(), o)
	runSteps(t, first, 3)
	ck := filepath.Join(t.TempDir(), CheckpointName)
	if err := first.SaveCheckpoint(ck); err != nil {
		t.Fatal(err)
	}
	o2 := o
	o2.Seed = o.Seed // the same run; a different seed would be refused
	resumed := newTestTrainer(t, path, smallConfig(), o2)
	if err := resumed.LoadCheckpoint(ck); err != nil {
		t.Fatal(err)
	}
	if got := resumed.StepsDone(); got != 3 {
		t.Fatalf("resumed at step %d, want 3", got)
	}
	runSteps(t, resumed, 3)
	if !slices.Equal(full.Params(), resumed.Params()) {
		t.Error("weights after stop at 3 + resume to 6 differ from an uninterrupted 6-step run")
	}
	if !slices.Equal(full.adam.m, resumed.adam.m) || !slices.Equal(full.adam.v, resumed.adam.v) {
		t.Error("optimiser moments differ after resume")
	}

	other := o
	other.Seed = 99
	bad := newTestTrainer(t, path, smallConfig(), other)
	if err := bad.LoadCheckpoint(ck); err == nil {
		t.Error("checkpoint of seed 1 loaded into a seed-99 run, want an error")
	}
}

// TestRunCancelResume stops Run through its context and resumes with Run.
func TestRunCancelResume(t *testing.T) {
	path, tok := tokenFile(t)
	_ = tok
	o := smallOptions()
	o.Steps = 5
	dir := t.TempDir()
	ref := newTestTrainer(t, path, smallConfig(), o)
	if err := ref.Run(context.Background(), RunConfig{OutDir: filepath.Join(dir, "ref")}); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(dir, "run")
	ctx, cancel := context.WithCancel(context.Background())
	tr := newTestTrainer(t, path, smallConfig(), o)
	err := tr.Run(ctx, RunConfig{OutDir: out, Progress: func(p Progress) {
		if p.Step == 2 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: got %v, want context.Canceled", err)
	}
	tr2 := newTestTrainer(t, path, smallConfig(), o)
	if err := tr2.LoadCheckpoint(filepath.Join(out, CheckpointName)); err != nil {
		t.Fatal(err)
	}
	if err := tr2.Run(context.Background(), RunConfig{OutDir: out, TokenizerPath: testTokenizer}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ref.Params(), tr2.Params()) {
		t.Error("cancelled and resumed Run differs from an uninterrupted Run")
	}
	if len(tr2.History()) != 5 {
		t.Errorf("history has %d points, want 5", len(tr2.History()))
	}
	for _, name := range []string{"config.json", "model.safetensors", "tokenizer.json", LossCurveName, CheckpointName} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("output: %v", err)
		}
	}
	svg, _ := os.ReadFile(filepath.Join(out, LossCurveName))
	if !strings.Contains(string(svg), "<svg") || !strings.Contains(string(svg), "validation loss") {
		t.Errorf("loss curve is not an SVG with a validation series: %.80q", svg)
	}
}

// TestAccumulation checks that 2 accumulated micro-batches of B sequences
// give the update of one batch of 2B (the same sequences, in the same order),
// up to float rounding.
func TestAccumulation(t *testing.T) {
	path, _ := tokenFile(t)
	o := smallOptions()
	o.Batch, o.Accum = 2, 2
	acc := newTestTrainer(t, path, smallConfig(), o)
	o.Batch, o.Accum = 4, 1
	one := newTestTrainer(t, path, smallConfig(), o)
	ra, ro := runSteps(t, acc, 3), runSteps(t, one, 3)
	for i := range ra {
		if d := math.Abs(ra[i].Loss - ro[i].Loss); d > 1e-5 {
			t.Errorf("step %d: accumulated loss %v, single batch %v", i+1, ra[i].Loss, ro[i].Loss)
		}
	}
	var num, den float64
	for i, v := range acc.Params() {
		d := float64(v - one.Params()[i])
		num += d * d
		den += float64(v) * float64(v)
	}
	if rel := math.Sqrt(num / den); rel > 1e-5 {
		t.Errorf("weights differ by %.2g (relative L2), want < 1e-5", rel)
	}
}

func TestLossDecreases(t *testing.T) {
	path, _ := tokenFile(t)
	o := smallOptions()
	o.Steps, o.LR = 40, 1e-2
	if testing.Short() {
		o.Steps = 25
	}
	tr := newTestTrainer(t, path, smallConfig(), o)
	before, err := tr.Eval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res := runSteps(t, tr, o.Steps)
	after, err := tr.Eval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := math.Log(600); math.Abs(before-want) > 0.1 {
		t.Errorf("initial validation loss %.4f, want about ln(600) = %.4f", before, want)
	}
	if after > before-0.5 {
		t.Errorf("validation loss %.4f -> %.4f after %d steps, want a drop of at least 0.5", before, after, o.Steps)
	}
	if last := res[len(res)-1].Loss; last > res[0].Loss-0.5 {
		t.Errorf("training loss %.4f -> %.4f, want a drop of at least 0.5", res[0].Loss, last)
	}
}

// TestExportLoadHF checks that model.LoadHF reads the exported directory and
// that the inference engine's loss on a sequence matches the trainer's.
func TestExportLoadHF(t *testing.T) {
	path, _ := tokenFile(t)
	for _, tc := range []struct {
		name  string
		tied  bool
		dtype string
		tol   float64
	}{
		{"tied-f32", true, "F32", 1e-4},
		{"untied-f32", false, "F32", 1e-4},
		{"tied-bf16", true, "BF16", 1e-2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := smallConfig()
			c.TieWordEmbeddings = tc.tied
			o := smallOptions()
			o.Batch = 1
			tr := newTestTrainer(t, path, c, o)
			runSteps(t, tr, 5)
			dir := t.TempDir()
			if err := tr.Export(dir, tc.dtype, testTokenizer); err != nil {
				t.Fatal(err)
			}
			w, err := model.LoadHF(dir)
			if err != nil {
				t.Fatal(err)
			}
			m, err := model.New(w, nil, model.WithHeadInt8(false))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			in, tg := make([]int, o.Seq), make([]int, o.Seq)
			if err := tr.data.read(tr.data.TrainSeqs, in, tg, c.VocabSize); err != nil {
				t.Fatal(err)
			}
			want, err := tr.eng.forward(in, tg, 1)
			if err != nil {
				t.Fatal(err)
			}
			res, err := m.Perplexity(context.Background(), append(in, tg[len(tg)-1]), o.Seq+1)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("inference %.6f trainer %.6f", res.NLLMean, want)
			if d := math.Abs(res.NLLMean-want) / want; d > tc.tol {
				t.Errorf("inference loss %.6f, trainer loss %.6f: relative difference %.2g, want < %g", res.NLLMean, want, d, tc.tol)
			}
		})
	}
}

func TestBadInputs(t *testing.T) {
	path, tok := tokenFile(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.txt")
	os.WriteFile(empty, nil, 0o644)
	if _, err := Tokenize(context.Background(), empty, filepath.Join(dir, "e.tokens"), tok, -1); !errors.Is(err, ErrData) {
		t.Errorf("empty corpus: got %v, want ErrData", err)
	}
	noText := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(noText, []byte("{\"text\": \"fine\"}\n{\"body\": \"x\"}\n"), 0o644)
	if _, err := Tokenize(context.Background(), noText, filepath.Join(dir, "b.tokens"), tok, 0); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("JSONL without text: got %v, want ErrData naming line 2", err)
	}
	if _, err := OpenDataset(path, 1<<20, 0.1); !errors.Is(err, ErrData) {
		t.Errorf("corpus shorter than a sequence: got %v, want ErrData", err)
	}
	d, err := OpenDataset(path, 16, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c := smallConfig()
	for _, tc := range []struct {
		name string
		c    model.Config
		edit func(*Options)
		want error
	}{
		{"seq beyond max positions", c, func(o *Options) { o.Seq = 128 }, ErrOptions},
		{"bad schedule", c, func(o *Options) { o.Schedule = "linear" }, ErrOptions},
		{"warmup 1", c, func(o *Options) { o.WarmupFrac = 1 }, ErrOptions},
		{"negative lr", c, func(o *Options) { o.LR = -1 }, ErrOptions},
		{"missing heads", func() model.Config { c := c; c.NumHeads = 0; return c }(), func(*Options) {}, model.ErrConfig},
		// Issue 10, defect 1: shapes no machine holds are refused before
		// anything is allocated (they used to panic in makeslice).
		{"huge shapes", func() model.Config {
			c := c
			c.HiddenSize, c.IntermediateSize, c.VocabSize = 1<<24, 1<<24, 1<<24
			return c
		}(), func(*Options) {}, model.ErrConfig},
		{"over the memory budget", c, func(o *Options) { o.MemoryBudget = MemoryBytes(c, *o) - 1 }, model.ErrOverBudget},
	} {
		o := smallOptions()
		tc.edit(&o)
		if tr, err := New(tc.c, d, o); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
			if tr != nil {
				tr.Close()
			}
		}
	}
	if _, err := model.ParseConfig([]byte(`{"architectures":["BitNetForCausalLM"],"vocab_size":600}`)); !errors.Is(err, model.ErrConfig) {
		t.Errorf("config missing fields: got %v, want model.ErrConfig", err)
	}
}

func TestJSONLTokenize(t *testing.T) {
	_, tok := tokenFile(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "docs.jsonl")
	os.WriteFile(src, []byte("{\"text\": \"Of the Refraction\"}\n\n{\"text\": \"of Light\", \"id\": 2}\n"), 0o644)
	n, err := Tokenize(context.Background(), src, filepath.Join(dir, "d.tokens"), tok, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := len(tok.EncodeOrdinary("Of the Refraction")) + len(tok.EncodeOrdinary("of Light")) + 2
	if int(n) != want {
		t.Errorf("got %d tokens, want %d (two documents and two separators)", n, want)
	}
}

func TestTokenizeChunksMatchWhole(t *testing.T) {
	path, tok := tokenFile(t)
	b, err := os.ReadFile(testCorpus)
	if err != nil {
		t.Fatal(err)
	}
	whole := tok.EncodeOrdinary(string(b))
	d, err := OpenDataset(path, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Tokens() != int64(len(whole)) {
		t.Errorf("streamed tokenisation has %d tokens, whole-text %d", d.Tokens(), len(whole))
	}
	for _, chunk := range []int{64, 1000, 4096} {
		var got []int
		err := tokenizeText(context.Background(), strings.NewReader(string(b)), tok, chunk, func(ids []int) error {
			got = append(got, ids...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, whole) {
			t.Errorf("chunks of %d bytes: %d tokens differ from whole-text tokenisation (%d tokens)", chunk, len(got), len(whole))
		}
	}
}

func TestInitFromHF(t *testing.T) {
	path, _ := tokenFile(t)
	t.Run("master weights", func(t *testing.T) {
		o := smallOptions()
		src := newTestTrainer(t, path, smallConfig(), o)
		runSteps(t, src, 2)
		dir := t.TempDir()
		if err := src.Export(dir, "F32", ""); err != nil {
			t.Fatal(err)
		}
		dst := newTestTrainer(t, path, smallConfig(), o)
		if err := dst.InitFromHF(dir); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(src.Params(), dst.Params()) {
			t.Error("weights initialised from an export differ from the exported ones")
		}
		other := smallConfig()
		other.HiddenSize, other.HeadDim = 32, 16
		if err := newTestTrainer(t, path, other, o).InitFromHF(dir); err == nil {
			t.Error("init from a model of another shape succeeded, want an error")
		}
	})
	t.Run("packed ternary", func(t *testing.T) {
		const dir = "../../testdata/models/tiny-gqa-packed"
		c, err := model.LoadConfigHF(dir)
		if err != nil {
			t.Skip("packed test model missing:", err)
		}
		o := smallOptions()
		tr := newTestTrainer(t, path, c, o)
		if err := tr.InitFromHF(dir); err != nil {
			t.Fatal(err)
		}
		w, err := model.LoadHF(dir)
		if err != nil {
			t.Fatal(err)
		}
		q := tr.eng.w.layers[1][tQ]
		m := w.Layers[1].Q
		if got, want := q[3*m.Cols+5], float32(m.Row(nil, 3)[5])*m.Scale; got != want {
			t.Errorf("layer 1 q_proj[3,5] = %v, want ternary*scale = %v", got, want)
		}
		// Training starts from there (re-ternarising keeps the codes).
		if _, err := tr.Step(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}
