// Command trainplan writes what a fresh `bitnet train` run starts from, so
// that the PyTorch reference (tools/reference/train_bench.py --plan DIR) can
// replay the same run: the initial master weights for a seed and the
// training sequences of every optimiser step. Dev-only.
//
//	go run ./tools/trainplan --config testdata/train/bench_config.json \
//	  --tokenizer testdata/tokenizer/opticks-bpe600.json \
//	  --data $(go env GOROOT)/src/testdata/Isaac.Newton-Opticks.txt --seed 1 --out /tmp/plan1
//
// DIR/init/ holds config.json and model.safetensors (F32 master weights, HF
// names); DIR/plan.json holds the recipe, the split and "order": per step,
// the indices of its batch*accum training sequences (sequence i is tokens
// [i*seq, i*seq+seq+1) of the tokenised corpus) and "tokens_sha256", the
// SHA-256 of the token ids as uint32 little-endian, to check the tokeniser.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
	"github.com/bitnet-mesh/bitnet-mesh/shared/train"
)

// plan is plan.json.
type plan struct {
	Seed         uint64  `json:"seed"`
	Steps        int     `json:"steps"`
	Batch        int     `json:"batch"`
	Seq          int     `json:"seq"`
	Accum        int     `json:"accum"`
	InitStd      float64 `json:"init_std"`
	ValFrac      float64 `json:"val_frac"`
	Tokens       int64   `json:"tokens"`
	TokensSHA256 string  `json:"tokens_sha256"`
	TrainSeqs    int     `json:"train_seqs"`
	ValSeqs      int     `json:"val_seqs"`
	Init         string  `json:"init"`
	Order        [][]int `json:"order"`
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "trainplan:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	d := train.DefaultOptions()
	fs := flag.NewFlagSet("trainplan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "model config.json (required)")
	tokPath := fs.String("tokenizer", "", "tokenizer.json (required)")
	dataPath := fs.String("data", "", "training corpus as for bitnet train (required)")
	out := fs.String("out", "", "output directory (required)")
	seed := fs.Uint64("seed", d.Seed, "seed of initialisation and shuffling")
	steps := fs.Int("steps", d.Steps, "optimiser steps")
	batch := fs.Int("batch", d.Batch, "sequences per micro-batch")
	seq := fs.Int("seq", d.Seq, "tokens per sequence")
	accum := fs.Int("accum", 1, "micro-batches per optimiser step")
	valFrac := fs.Float64("val-frac", d.ValFrac, "validation share, as bitnet train --val-frac")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *configPath == "" || *tokPath == "" || *dataPath == "" || *out == "" {
		return fmt.Errorf("--config, --tokenizer, --data and --out are required")
	}
	raw, err := os.ReadFile(*configPath)
	if err != nil {
		return err
	}
	cfg, err := model.ParseConfig(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", *configPath, err)
	}
	tok, err := tokenizer.Load(*tokPath)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	sep := -1 // as bitnet train: the EOS id separates JSONL records
	if len(cfg.EOSTokenIDs) > 0 {
		sep = cfg.EOSTokenIDs[0]
	}
	tokFile := filepath.Join(*out, "train.tokens")
	ntok, err := train.Tokenize(ctx, *dataPath, tokFile, tok, sep)
	if err != nil {
		return err
	}
	sum, err := fileSHA256(tokFile)
	if err != nil {
		return err
	}
	data, err := train.OpenDataset(tokFile, *seq, *valFrac)
	if err != nil {
		return err
	}
	defer data.Close()
	opt := d
	opt.Seed, opt.Steps, opt.Batch, opt.Seq, opt.Accum, opt.ValFrac = *seed, *steps, *batch, *seq, *accum, *valFrac
	opt.Threads = 1
	tr, err := train.New(cfg, data, opt)
	if err != nil {
		return err
	}
	defer tr.Close()
	initDir := filepath.Join(*out, "init")
	if err := tr.Export(initDir, "F32", ""); err != nil {
		return err
	}
	order, err := train.SequenceOrder(*seed, data.TrainSeqs, *steps, *batch, *accum)
	if err != nil {
		return err
	}
	p := plan{
		Seed: *seed, Steps: *steps, Batch: *batch, Seq: *seq, Accum: *accum, InitStd: opt.InitStd,
		ValFrac: *valFrac, Tokens: ntok, TokensSHA256: sum, TrainSeqs: data.TrainSeqs,
		ValSeqs: data.ValSeqs, Init: "init", Order: order,
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "plan.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "trainplan: %d tokens, %d train / %d val sequences, %d steps; wrote %s/{init,plan.json}\n",
		ntok, data.TrainSeqs, data.ValSeqs, *steps, *out)
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
