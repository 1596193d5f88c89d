package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

const testTokenizer = "../../testdata/tokenizer/opticks-bpe600.json"

// writeModels runs "models" into a temporary directory once per test.
func writeModels(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"models", "-out", dir, "-tokenizer", testTokenizer}, &out, &errb); err != nil {
		t.Fatalf("models: %v (%s)", err, errb.String())
	}
	if got, want := strings.Count(out.String(), ".gguf\n"), len(variants()); got != want {
		t.Fatalf("models printed %d files, want %d:\n%s", got, want, out.String())
	}
	return dir
}

func TestModels(t *testing.T) {
	dir := writeModels(t)
	ref, _, err := model.ReadGGUF(filepath.Join(dir, "tq2_0.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		zeroDown bool
	}{
		{"tq2_0", false},
		{"tq1_0", false},
		{"tq2_0-scale", false},
		{"tq2_0-noffn", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, tok, err := model.ReadGGUF(filepath.Join(dir, tc.name+".gguf"))
			if err != nil {
				t.Fatal(err)
			}
			if tok == nil {
				t.Fatal("no tokenizer")
			}
			if got, want := w.Config.BOSTokenID, 598; got != want {
				t.Errorf("BOS = %d, want %d", got, want)
			}
			for i, l := range w.Layers {
				down := l.Down.Unpack()
				nonzero := false
				for _, v := range down {
					nonzero = nonzero || v != 0
				}
				if nonzero == tc.zeroDown {
					t.Errorf("layer %d: ffn_down has nonzero weights = %v, want %v", i, nonzero, !tc.zeroDown)
				}
				if got, want := l.Q.Unpack(), ref.Layers[i].Q.Unpack(); !equalInt8(got, want) {
					t.Errorf("layer %d: attn_q differs from tq2_0.gguf", i)
				}
			}
		})
	}
}

func equalInt8(a, b []int8) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLlamaPerplexity(t *testing.T) {
	dir := writeModels(t)
	m, err := model.Load(filepath.Join(dir, "tq2_0.gguf"), model.WithHeadInt8(false))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	tokens := make([]int, 70)
	for i := range tokens {
		tokens[i] = (i*37 + 5) % 598
	}
	const bos = 598
	for _, tc := range []struct {
		name       string
		n, chunks  int
		wantChunks int
	}{
		{"all chunks", 16, 0, 4},     // 70/16 = 4, the tail of 6 dropped
		{"limited chunks", 16, 2, 2}, // like --chunks 2
		{"two chunks", 32, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := llamaPerplexity(ctx, m, tokens, tc.n, tc.chunks, bos)
			if err != nil {
				t.Fatal(err)
			}
			if got.Chunks != tc.wantChunks {
				t.Errorf("chunks = %d, want %d", got.Chunks, tc.wantChunks)
			}
			if want := tc.wantChunks * (tc.n - 1 - tc.n/2); got.Tokens != want {
				t.Errorf("tokens scored = %d, want %d", got.Tokens, want)
			}
			if math.Abs(got.PPL-math.Exp(got.NLLMean)) > 1e-9*got.PPL || !(got.PPL > 1) {
				t.Errorf("ppl = %v, nll_mean = %v: want ppl = exp(nll_mean) > 1", got.PPL, got.NLLMean)
			}
		})
	}

	// The first token of every chunk is replaced by BOS, so it cannot matter.
	other := append([]int(nil), tokens...)
	other[0], other[16] = 7, 9
	a, err := llamaPerplexity(ctx, m, tokens, 16, 2, bos)
	if err != nil {
		t.Fatal(err)
	}
	b, err := llamaPerplexity(ctx, m, other, 16, 2, bos)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("changing chunk-initial tokens changed the result: got %+v, want %+v", b, a)
	}

	for _, tc := range []struct {
		name string
		n    int
		toks []int
	}{
		{"ctx too small", 2, tokens},
		{"ctx past max positions", 1024, tokens},
		{"fewer than 2*ctx tokens", 64, tokens},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := llamaPerplexity(ctx, m, tc.toks, tc.n, 0, bos); err == nil {
				t.Errorf("ctx %d with %d tokens: got no error", tc.n, len(tc.toks))
			}
		})
	}
}

func TestPPLAndIDsCommands(t *testing.T) {
	dir := writeModels(t)
	text := filepath.Join(t.TempDir(), "text.txt")
	data := []byte(strings.Repeat("Of the Refractions of the Rays of Light. ", 40))
	if err := os.WriteFile(text, data, 0o644); err != nil {
		t.Fatal(err)
	}
	gguf := filepath.Join(dir, "tq1_0.gguf")
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"ppl", "-model", gguf, "-text", text, "-ctx", "32", "-json"}, &out, &errb); err != nil {
		t.Fatalf("ppl: %v (%s)", err, errb.String())
	}
	var res pplResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("ppl -json printed %q: %v", out.String(), err)
	}
	if res.Chunks < 2 || res.Tokens != res.Chunks*15 {
		t.Errorf("ppl: got %+v, want >= 2 chunks of 15 scored tokens", res)
	}
	out.Reset()
	if err := run(context.Background(), []string{"ids", "-model", gguf, "-text", text}, &out, &errb); err != nil {
		t.Fatalf("ids: %v", err)
	}
	if got := strings.Count(out.String(), ",") + 1; got < 2*32+1 {
		t.Errorf("ids printed %d ids, want > %d", got, 2*32)
	}
}

func TestRunErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "usage"},
		{"unknown command", []string{"bench"}, "unknown command"},
		{"models without out", []string{"models"}, "-out is required"},
		{"ppl without model", []string{"ppl", "-text", "x"}, "-model and -text are required"},
		{"ids without text", []string{"ids", "-model", "x"}, "-model and -text are required"},
		{"ppl missing file", []string{"ppl", "-model", "x.gguf", "-text", "/nonexistent/text"}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tc.args, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}
