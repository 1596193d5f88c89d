package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
	"github.com/bitnet-mesh/bitnet-mesh/shared/train"
)

const trainUsage = "usage: bitnet train --config CONFIG.json --tokenizer TOKENIZER.json --data TEXT|JSONL [--steps N --batch B --seq T --lr LR --warmup-frac F --min-lr-frac F --weight-decay W --schedule cosine|two-stage --seed S --threads K --eval-every N --resume --init HFDIR --packed-out DIR2 --gguf-out FILE --gguf-type tq2_0|tq1_0] --out DIR"

// runTrain implements bitnet train: QAT from scratch on a text or JSONL
// corpus, writing a Hugging Face directory, a checkpoint and loss.svg to --out.
func runTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	d := train.DefaultOptions()
	fset := flag.NewFlagSet("train", flag.ContinueOnError)
	fset.SetOutput(stderr)
	configPath := fset.String("config", "", "model config.json with Hugging Face BitNet keys (required)")
	tokPath := fset.String("tokenizer", "", "tokenizer.json (required)")
	dataPath := fset.String("data", "", "training corpus: plain text, or .jsonl with a \"text\" field (required)")
	out := fset.String("out", "", "output directory (required)")
	steps := fset.Int("steps", d.Steps, "optimiser steps")
	batch := fset.Int("batch", d.Batch, "sequences per micro-batch")
	seq := fset.Int("seq", d.Seq, "tokens per sequence")
	accum := fset.Int("accum", 1, "micro-batches accumulated per optimiser step")
	lr := fset.Float64("lr", d.LR, "peak learning rate")
	warmup := fset.Float64("warmup-frac", d.WarmupFrac, "share of steps for linear warmup")
	minLR := fset.Float64("min-lr-frac", d.MinLRFrac, "final learning rate as a share of the peak")
	wd := fset.Float64("weight-decay", d.WeightDecay, "decoupled weight decay on linear weights (stage 1 of two-stage)")
	sched := fset.String("schedule", d.Schedule, "learning rate schedule: cosine or two-stage")
	clip := fset.Float64("clip", d.ClipNorm, "global gradient norm clipping (<= 0 disables)")
	seed := fset.Uint64("seed", d.Seed, "seed of initialisation and shuffling")
	threads := fset.Int("threads", 0, "worker goroutines (default: all cores; results do not depend on it)")
	evalEvery := fset.Int("eval-every", 25, "validate every N steps (0: only at the end)")
	evalBatches := fset.Int("eval-batches", 0, "validation batches per evaluation (0: the whole split)")
	valFrac := fset.Float64("val-frac", d.ValFrac, "held-out tail share of the data for validation")
	ckptEvery := fset.Int("checkpoint-every", 50, "checkpoint every N steps (0: only at the end)")
	resume := fset.Bool("resume", false, "continue from DIR/"+train.CheckpointName+" when present")
	fullPrec := fset.Bool("full-precision", false, "disable weight and activation quantisation (baseline run)")
	dtype := fset.String("dtype", "F32", "dtype of the exported master weights (and of the norms and embedding of --packed-out): F32 or BF16")
	ggufOut := fset.String("gguf-out", "", "also export the ternary model as a llama.cpp GGUF file (widths must be multiples of 256)")
	ggufType := fset.String("gguf-type", "tq2_0", "ternary tensor type of --gguf-out: tq2_0 or tq1_0")
	packedOut := fset.String("packed-out", "", "also export the ternary model in the pre-quantised HF format (packed uint8 + weight_scale, quantization_mode offline) to this directory")
	initDir := fset.String("init", "", "fine-tune: start from this Hugging Face directory's weights (its config.json when --config is omitted)")
	fset.Usage = func() {
		fmt.Fprintln(stderr, trainUsage)
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		return fmt.Errorf("train: unexpected argument %q", fset.Arg(0))
	}
	if *configPath == "" && *initDir != "" {
		*configPath = filepath.Join(*initDir, "config.json")
	}
	for _, req := range []struct{ name, v string }{{"config", *configPath}, {"tokenizer", *tokPath}, {"data", *dataPath}, {"out", *out}} {
		if req.v == "" {
			return fmt.Errorf("train: --%s is required\n%s", req.name, trainUsage)
		}
	}
	if *packedOut != "" && *fullPrec {
		return fmt.Errorf("train: --packed-out needs ternary weights; a --full-precision run has none")
	}
	if *packedOut != "" && filepath.Clean(*packedOut) == filepath.Clean(*out) {
		return fmt.Errorf("train: --packed-out %s is the --out directory (both write model.safetensors)", *packedOut)
	}
	gtype, err := model.ParseTernaryType(*ggufType)
	if err != nil {
		return fmt.Errorf("train: --gguf-type %q: %w", *ggufType, err)
	}
	if *ggufOut != "" && *fullPrec {
		return fmt.Errorf("train: --gguf-out needs ternary weights; a --full-precision run has none")
	}
	raw, err := os.ReadFile(*configPath)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	cfg, err := model.ParseConfig(raw)
	if err != nil {
		return fmt.Errorf("train: %s: %w", *configPath, err)
	}
	tok, err := tokenizer.Load(*tokPath)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if tok.VocabSize() > cfg.VocabSize {
		return fmt.Errorf("train: %s has %d tokens, more than vocab_size = %d", *tokPath, tok.VocabSize(), cfg.VocabSize)
	}
	opt := train.Options{
		Steps: *steps, Batch: *batch, Seq: *seq, Accum: *accum, LR: *lr, WarmupFrac: *warmup,
		MinLRFrac: *minLR, WeightDecay: *wd, Schedule: *sched, Beta1: d.Beta1, Beta2: d.Beta2,
		Eps: d.Eps, ClipNorm: *clip, InitStd: d.InitStd, Seed: *seed, Threads: *threads,
		FullPrec: *fullPrec, ValFrac: *valFrac, EvalBatches: *evalBatches,
	}
	if opt.ClipNorm <= 0 {
		opt.ClipNorm = -1
	}
	if w := ggufWidths(cfg); *ggufOut != "" && w != "" {
		return fmt.Errorf("train: --gguf-out: %s must be a multiple of %d for %s", w, ternary.BlockSize, *ggufType)
	}
	if *seq > cfg.MaxPositions {
		return fmt.Errorf("train: --seq %d exceeds max_position_embeddings = %d", *seq, cfg.MaxPositions)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	sep := -1
	if len(cfg.EOSTokenIDs) > 0 {
		sep = cfg.EOSTokenIDs[0]
	}
	tokFile := filepath.Join(*out, "train.tokens")
	t0 := time.Now()
	ntok, err := train.Tokenize(ctx, *dataPath, tokFile, tok, sep)
	if err != nil {
		return err
	}
	data, err := train.OpenDataset(tokFile, *seq, *valFrac)
	if err != nil {
		return err
	}
	defer data.Close()
	fmt.Fprintf(stderr, "train: %d tokens in %v: %d training and %d validation sequences of %d\n", ntok, time.Since(t0).Round(time.Millisecond), data.TrainSeqs, data.ValSeqs, *seq)
	tr, err := train.New(cfg, data, opt)
	if err != nil {
		return err
	}
	defer tr.Close()
	if *initDir != "" {
		if err := tr.InitFromHF(*initDir); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "train: initialised from %s\n", *initDir)
	}
	if *resume {
		ck := filepath.Join(*out, train.CheckpointName)
		switch _, err := os.Stat(ck); {
		case errors.Is(err, fs.ErrNotExist):
			fmt.Fprintf(stderr, "train: no checkpoint in %s, starting from scratch\n", *out)
		case err != nil:
			return fmt.Errorf("train: %w", err)
		default:
			if err := tr.LoadCheckpoint(ck); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "train: resumed at step %d\n", tr.StepsDone())
		}
	}
	quant := "ternary weights, int8 activations"
	if *fullPrec {
		quant = "full precision"
	}
	fmt.Fprintf(stderr, "train: %s; %s; %d steps of %dx%d tokens (x%d accumulated), %s schedule\n", cfg, quant, *steps, *batch, *seq, *accum, *sched)
	err = tr.Run(ctx, train.RunConfig{
		OutDir: *out, TokenizerPath: *tokPath, ExportDType: *dtype, EvalEvery: *evalEvery,
		CheckpointEvery: *ckptEvery,
		Progress: func(p train.Progress) {
			val := ""
			if p.HasVal {
				val = fmt.Sprintf(" val %.4f (ppl %.2f)", p.ValLoss, expSafe(p.ValLoss))
			}
			fmt.Fprintf(stderr, "step %d/%d loss %.4f%s lr %.3g gnorm %.3f %.0f tok/s eta %v\n",
				p.Step, p.Steps, p.Loss, val, p.LR, p.GradNorm, p.TokensPerSec, p.ETA.Round(time.Second))
		},
	})
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s (config.json, model.safetensors, tokenizer.json, %s, %s)\n", *out, train.LossCurveName, train.CheckpointName)
	if *packedOut != "" {
		if err := tr.ExportPacked(*packedOut, *dtype, *tokPath); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (packed ternary: config.json, model.safetensors, tokenizer.json)\n", *packedOut)
	}
	if *ggufOut != "" {
		// The master export ternarises at load exactly as training did.
		w, tok, err := model.LoadWeights(*out)
		if err != nil {
			return fmt.Errorf("train: gguf export: %w", err)
		}
		if err := model.WriteGGUF(*ggufOut, w, tok, model.WithTernaryType(gtype), model.WithModelName(filepath.Base(filepath.Clean(*out)))); err != nil {
			return fmt.Errorf("train: gguf export: %w", err)
		}
		fmt.Fprintf(stdout, "wrote %s (GGUF %s)\n", *ggufOut, *ggufType)
	}
	return nil
}

// ggufWidths names the first input width of cfg's ternary linears that the
// TQ formats cannot hold ("" when all are multiples of the 256-weight block).
func ggufWidths(c model.Config) string {
	for _, w := range []struct {
		name string
		n    int
	}{{"hidden_size", c.HiddenSize}, {"intermediate_size", c.IntermediateSize}, {"num_attention_heads*head_dim", c.QDim()}} {
		if w.n%ternary.BlockSize != 0 {
			return fmt.Sprintf("%s = %d", w.name, w.n)
		}
	}
	return ""
}

// expSafe is exp(x) capped to stay printable.
func expSafe(x float64) float64 { return math.Exp(min(x, 700)) }
