package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/bitnet-mesh/bitnet-mesh/cmd/bitnet/internal/config"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
	"github.com/bitnet-mesh/bitnet-mesh/shared/train"
)

const trainUse = "train --config CONFIG.json --tokenizer TOKENIZER.json --data TEXT|JSONL --out DIR [flags]"

// newTrainCmd is bitnet train: QAT from scratch on a text or JSONL corpus,
// writing a Hugging Face directory, a checkpoint and loss.svg to --out.
func newTrainCmd(env config.Lookup) *cobra.Command {
	c := &cobra.Command{
		Use:   trainUse,
		Short: "Train a BitNet model with quantization-aware training (QAT)",
		Long: `Train a BitNet b1.58 model from scratch (or fine-tune one with --init) with
quantization-aware training on a plain text or JSONL corpus. Writes a Hugging
Face directory (config.json, model.safetensors, tokenizer.json) to --out, with
a checkpoint and loss.svg; --packed-out and --gguf-out export the ternary model.
Push only the model files with "bitnet push DIR" (checkpoints stay local).`,
		Example: `  bitnet train --config examples/opticks-tiny/config.json --tokenizer testdata/tokenizer/opticks-bpe600.json \
      --data "$(go env GOROOT)/src/testdata/Isaac.Newton-Opticks.txt" --steps 250 --out /tmp/opticks
  bitnet train --init /tmp/opticks --tokenizer testdata/tokenizer/opticks-bpe600.json --data notes.txt --steps 50 --out /tmp/opticks-ft
  bitnet train --config cfg.json --tokenizer tok.json --data corpus.jsonl --out /tmp/m --resume --gguf-out /tmp/m.gguf`,
		Args: noArgs,
	}
	set := config.Bind(c, config.Threads)
	d := train.DefaultOptions()
	fset := c.Flags()
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
	_ = c.RegisterFlagCompletionFunc("schedule", fixedCompletion("cosine", "two-stage"))
	_ = c.RegisterFlagCompletionFunc("gguf-type", fixedCompletion("tq2_0", "tq1_0"))
	_ = c.RegisterFlagCompletionFunc("dtype", fixedCompletion("F32", "BF16"))
	c.RunE = func(c *cobra.Command, _ []string) error {
		ctx, stdout, stderr := c.Context(), c.OutOrStdout(), c.ErrOrStderr()
		v, err := set.Resolve(env)
		if err != nil {
			return fmt.Errorf("train: %w", err)
		}
		threads := config.Threads.Get(v)
		if *configPath == "" && *initDir != "" {
			*configPath = filepath.Join(*initDir, "config.json")
		}
		for _, req := range []struct{ name, v string }{{"config", *configPath}, {"tokenizer", *tokPath}, {"data", *dataPath}, {"out", *out}} {
			if req.v == "" {
				return fmt.Errorf("train: --%s is required (usage: bitnet %s)", req.name, trainUse)
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
			Eps: d.Eps, ClipNorm: *clip, InitStd: d.InitStd, Seed: *seed, Threads: threads,
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
	return c
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
