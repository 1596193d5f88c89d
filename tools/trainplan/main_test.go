package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/train"
)

func TestTrainPlan(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	os.WriteFile(cfg, []byte(`{"architectures":["BitNetForCausalLM"],"vocab_size":600,"hidden_size":16,
		"intermediate_size":32,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,
		"max_position_embeddings":64,"tie_word_embeddings":true}`), 0o644)
	out := filepath.Join(dir, "plan")
	var stderr bytes.Buffer
	args := []string{"--config", cfg, "--tokenizer", "../../testdata/tokenizer/opticks-bpe600.json",
		"--data", "../../shared/train/testdata/opticks-30k.txt", "--seed", "3", "--steps", "5", "--batch", "2", "--seq", "16", "--out", out}
	if err := run(context.Background(), args, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	raw, err := os.ReadFile(filepath.Join(out, "plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p plan
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	want, err := train.SequenceOrder(3, p.TrainSeqs, 5, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Order) != 5 || len(p.TokensSHA256) != 64 || p.Seed != 3 {
		t.Fatalf("plan: got %d steps, sha %q, seed %d; want 5 steps, a SHA-256, seed 3", len(p.Order), p.TokensSHA256, p.Seed)
	}
	for s := range want {
		for i := range want[s] {
			if p.Order[s][i] != want[s][i] {
				t.Fatalf("order[%d][%d] = %d, want %d", s, i, p.Order[s][i], want[s][i])
			}
		}
	}
	if _, err := model.LoadHF(filepath.Join(out, p.Init)); err != nil {
		t.Errorf("initial weights do not load: %v", err)
	}
	if err := run(context.Background(), []string{"--config", cfg}, &stderr); err == nil {
		t.Error("missing flags: got nil error")
	}
}
