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

const (
	trainTokenizer = "../../testdata/tokenizer/opticks-bpe600.json"
	trainCorpus    = "../../shared/train/testdata/opticks-30k.txt"
)

// TestTrainCommand trains a tiny model through the CLI contract, then scores
// the result with bitnet perplexity.
func TestTrainCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	os.WriteFile(cfg, []byte(`{"architectures":["BitNetForCausalLM"],"vocab_size":600,"hidden_size":16,
		"intermediate_size":32,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,
		"max_position_embeddings":64,"tie_word_embeddings":true}`), 0o644)
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	args := []string{"train", "--config", cfg, "--tokenizer", trainTokenizer, "--data", trainCorpus,
		"--steps", "4", "--batch", "2", "--seq", "16", "--lr", "1e-2", "--warmup-frac", "0.25", "--min-lr-frac", "0.1",
		"--weight-decay", "0.1", "--schedule", "two-stage", "--seed", "3", "--threads", "2", "--eval-every", "2", "--out", out,
		"--packed-out", filepath.Join(dir, "packed")}
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("train: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "step 4/4 loss") || !strings.Contains(stderr.String(), "tok/s") {
		t.Errorf("stderr lacks the progress line:\n%s", stderr.String())
	}
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "loss.svg", "checkpoint.safetensors"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing output: %v", err)
		}
	}
	// --resume of a finished run continues nothing and rewrites the same model.
	before, _ := os.ReadFile(filepath.Join(out, "model.safetensors"))
	stderr.Reset()
	if err := run(context.Background(), append(args, "--resume"), &stdout, &stderr); err != nil {
		t.Fatalf("train --resume: %v\n%s", err, stderr.String())
	}
	after, _ := os.ReadFile(filepath.Join(out, "model.safetensors"))
	if !bytes.Equal(before, after) {
		t.Error("resuming a finished run changed the model")
	}

	// Fine-tune the result for two steps (config taken from --init).
	tuned := filepath.Join(dir, "tuned")
	stderr.Reset()
	if err := run(context.Background(), []string{"train", "--init", out, "--tokenizer", trainTokenizer, "--data", trainCorpus,
		"--steps", "2", "--batch", "2", "--seq", "16", "--out", tuned}, &stdout, &stderr); err != nil {
		t.Fatalf("train --init: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "initialised from") {
		t.Errorf("stderr does not report the initialisation:\n%s", stderr.String())
	}

	text := filepath.Join(dir, "text.txt")
	os.WriteFile(text, []byte("Of the Refraction of Light, and the Colours which it makes."), 0o644)
	var ppl []float64
	for _, m := range []string{out, filepath.Join(dir, "packed")} {
		stdout.Reset()
		if err := run(context.Background(), []string{"perplexity", "--model", m, "--text", text, "--json"}, &stdout, &stderr); err != nil {
			t.Fatalf("perplexity of %s: %v", m, err)
		}
		var res struct {
			PPL float64 `json:"ppl"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || !(res.PPL > 1) {
			t.Errorf("perplexity output %q: want a ppl > 1 (err %v)", stdout.String(), err)
		}
		ppl = append(ppl, res.PPL)
	}
	if ppl[0] != ppl[1] {
		t.Errorf("perplexity of the packed export %v, of the master export %v: want equal", ppl[1], ppl[0])
	}
}

func TestTrainCommandErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	os.WriteFile(cfg, []byte(`{"architectures":["BitNetForCausalLM"],"vocab_size":600,"hidden_size":16,
		"intermediate_size":32,"num_hidden_layers":1,"num_attention_heads":2,"max_position_embeddings":32}`), 0o644)
	missing := filepath.Join(dir, "missing.json")
	os.WriteFile(missing, []byte(`{"architectures":["BitNetForCausalLM"],"vocab_size":600}`), 0o644)
	empty := filepath.Join(dir, "empty.txt")
	os.WriteFile(empty, nil, 0o644)
	base := func(c, data string, extra ...string) []string {
		return append([]string{"train", "--config", c, "--tokenizer", trainTokenizer, "--data", data, "--out", filepath.Join(dir, "o")}, extra...)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no out", []string{"train", "--config", cfg}, "--tokenizer is required"},
		{"config missing fields", base(missing, trainCorpus), "missing field hidden_size"},
		{"empty data", base(cfg, empty, "--seq", "16"), "has no tokens"},
		{"seq beyond positions", base(cfg, trainCorpus, "--seq", "64"), "exceeds max_position_embeddings"},
		{"bad schedule", base(cfg, trainCorpus, "--seq", "16", "--schedule", "step"), "schedule"},
		{"packed full precision", base(cfg, trainCorpus, "--seq", "16", "--full-precision", "--packed-out", filepath.Join(dir, "p")), "--packed-out needs ternary"},
		{"packed same dir", base(cfg, trainCorpus, "--seq", "16", "--packed-out", filepath.Join(dir, "o")), "is the --out directory"},
		{"gguf full precision", base(cfg, trainCorpus, "--seq", "16", "--full-precision", "--gguf-out", filepath.Join(dir, "m.gguf")), "--gguf-out needs ternary"},
		{"gguf narrow", base(cfg, trainCorpus, "--seq", "16", "--gguf-out", filepath.Join(dir, "m.gguf")), "hidden_size = 16 must be a multiple of 256"},
		{"gguf type", base(cfg, trainCorpus, "--seq", "16", "--gguf-type", "q4_0"), `--gguf-type "q4_0"`},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// TestTrainGGUFOut trains a model whose widths the TQ formats hold and
// checks that --gguf-out writes a GGUF the engine loads, scoring the corpus
// like the master export.
func TestTrainGGUFOut(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	os.WriteFile(cfg, []byte(`{"architectures":["BitNetForCausalLM"],"vocab_size":600,"hidden_size":256,
		"intermediate_size":256,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,
		"max_position_embeddings":64,"tie_word_embeddings":true}`), 0o644)
	out, ggufPath := filepath.Join(dir, "out"), filepath.Join(dir, "m.gguf")
	var stdout, stderr bytes.Buffer
	args := []string{"train", "--config", cfg, "--tokenizer", trainTokenizer, "--data", trainCorpus,
		"--steps", "2", "--batch", "2", "--seq", "16", "--threads", "2", "--out", out, "--gguf-out", ggufPath, "--gguf-type", "tq1_0"}
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("train: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "GGUF tq1_0") {
		t.Errorf("stdout %q: want the GGUF line", stdout.String())
	}
	var ppl [2]float64
	for i, path := range []string{out, ggufPath} {
		m, err := model.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		res, err := m.Perplexity(context.Background(), m.Tokenizer().EncodeOrdinary("Light is refracted by prisms."), 0)
		m.Close()
		if err != nil {
			t.Fatal(err)
		}
		ppl[i] = res.PPL
	}
	if rel := math.Abs(ppl[1]-ppl[0]) / ppl[0]; rel > 0.01 {
		t.Errorf("perplexity of the GGUF %g, of the master export %g: want within 1%%", ppl[1], ppl[0])
	}
}
