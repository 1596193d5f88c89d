package train

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// CheckpointName is the checkpoint file Run keeps in its output directory.
const CheckpointName = "checkpoint.safetensors"

// LossCurveName is the loss curve Run writes beside the checkpoint.
const LossCurveName = "loss.svg"

// RunConfig drives Run.
type RunConfig struct {
	OutDir          string         // HF export, checkpoint and loss curve go here
	TokenizerPath   string         // copied into OutDir when set
	ExportDType     string         // "F32" (default) or "BF16"
	EvalEvery       int            // validate every N steps (and at the end); 0: only at the end
	CheckpointEvery int            // checkpoint every N steps; 0: only at the end or on cancellation
	Progress        func(Progress) // called after every step (may be nil)
}

// Progress reports one step of a run.
type Progress struct {
	Step, Steps  int
	Loss         float64
	ValLoss      float64 // valid when HasVal
	HasVal       bool
	LR           float64
	GradNorm     float64
	TokensPerSec float64 // training throughput of this run so far
	ETA          time.Duration
}

// Run trains until Options.Steps, validating and checkpointing as rc says,
// then exports the model to rc.OutDir with the loss curve. On cancellation
// it writes a checkpoint (so the run resumes where it stopped) and returns
// the context's error.
func (t *Trainer) Run(ctx context.Context, rc RunConfig) error {
	if rc.OutDir == "" {
		return fmt.Errorf("%w: no output directory", ErrOptions)
	}
	if rc.ExportDType == "" {
		rc.ExportDType = "F32"
	}
	if err := os.MkdirAll(rc.OutDir, 0o755); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	ckpt := filepath.Join(rc.OutDir, CheckpointName)
	start, startStep := time.Now(), t.step
	var trainTime time.Duration
	for t.step < t.opt.Steps {
		t0 := time.Now()
		res, err := t.Step(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				if cerr := t.SaveCheckpoint(ckpt); cerr != nil {
					return errors.Join(err, cerr)
				}
			}
			return err
		}
		trainTime += time.Since(t0)
		pt := Point{Step: res.Step, Loss: res.Loss}
		last := t.step == t.opt.Steps
		if t.data.ValSeqs > 0 && (last || (rc.EvalEvery > 0 && t.step%rc.EvalEvery == 0)) {
			v, err := t.Eval(ctx)
			if err != nil {
				if ctx.Err() != nil { // the step is done: keep it, without its validation
					t.history = append(t.history, pt)
					if cerr := t.SaveCheckpoint(ckpt); cerr != nil {
						return errors.Join(err, cerr)
					}
				}
				return err
			}
			pt.ValLoss, pt.HasVal = v, true
		}
		t.history = append(t.history, pt)
		if last || (rc.CheckpointEvery > 0 && t.step%rc.CheckpointEvery == 0) {
			if err := t.SaveCheckpoint(ckpt); err != nil {
				return err
			}
		}
		if rc.Progress != nil {
			done := t.step - startStep
			per := time.Since(start) / time.Duration(done)
			rc.Progress(Progress{
				Step: t.step, Steps: t.opt.Steps, Loss: res.Loss, ValLoss: pt.ValLoss, HasVal: pt.HasVal,
				LR: res.LR, GradNorm: res.GradNorm,
				TokensPerSec: float64(done*res.Tokens) / trainTime.Seconds(),
				ETA:          per * time.Duration(t.opt.Steps-t.step),
			})
		}
	}
	if err := t.Export(rc.OutDir, rc.ExportDType, rc.TokenizerPath); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(rc.OutDir, LossCurveName), LossCurveSVG(t.history))
}
