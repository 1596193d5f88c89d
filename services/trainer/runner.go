package trainer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
	"github.com/bitnet-mesh/bitnet-mesh/shared/train"
)

// Runner executes the training of a job whose inputs are in place. The
// Trainer calls Run from one of its workers and owns the work directory;
// LocalRunner trains in process, a Kubernetes runner would start a Job
// whose pod mounts the same directory and stream its events back.
type Runner interface {
	// Name identifies the runner in Job.Runner ("local", ...).
	Name() string
	// Run trains spec to completion, calling event (from one goroutine)
	// after every optimiser step, and returns once the Hugging Face export
	// is in RunSpec.OutDir. When ctx is cancelled it stops before the next
	// step, leaves a checkpoint in OutDir and returns ctx's error.
	Run(ctx context.Context, spec RunSpec, event func(Event)) (RunResult, error)
}

// RunSpec is everything a runner needs, as files in the job's directory.
type RunSpec struct {
	JobID           string
	Config          model.Config  // the model trained
	InitDir         string        // Hugging Face directory to start from; "" trains from scratch
	TokenizerPath   string        // tokenizer.json
	DataPath        string        // training text, or JSON Lines when it ends in .jsonl
	ValidationPath  string        // validation text (same format); "" holds out Options.ValFrac of DataPath
	OutDir          string        // checkpoint and export; a checkpoint there is resumed
	Options         train.Options // hyperparameters with defaults filled in
	EvalEvery       int           // validate every N steps (and at the end)
	CheckpointEvery int           // checkpoint every N steps (and at the end)
}

// Event reports one optimiser step.
type Event struct {
	Metrics    Metrics
	Validated  bool   // Metrics.ValLoss is new
	Checkpoint string // path of a checkpoint written at this step, "" when none
}

// RunResult summarises a finished run.
type RunResult struct {
	TrainLoss    float64 // loss of the last step
	ValLoss      float64 // last validation loss
	ResumedAt    int     // step the run resumed from (0: a fresh start)
	TokensInData int64
}

// LocalRunner trains in this process, on goroutines owned by the
// train.Trainer it creates and closes for each run.
type LocalRunner struct{}

// Name implements Runner.
func (LocalRunner) Name() string { return "local" }

// tokensFile is the tokenised data in the out directory.
const (
	tokensFile    = "train.tokens"
	valTokensFile = "validation.tokens"
)

// Run implements Runner.
func (LocalRunner) Run(ctx context.Context, s RunSpec, event func(Event)) (RunResult, error) {
	var res RunResult
	if err := os.MkdirAll(s.OutDir, 0o755); err != nil {
		return res, fmt.Errorf("out dir: %w", err)
	}
	tok, err := tokenizer.Load(s.TokenizerPath)
	if err != nil {
		return res, fmt.Errorf("tokenizer: %w: %w", err, jobs.ErrInvalid)
	}
	if tok.VocabSize() > s.Config.VocabSize {
		return res, fmt.Errorf("tokenizer has %d tokens, more than vocab_size = %d: %w", tok.VocabSize(), s.Config.VocabSize, jobs.ErrInvalid)
	}
	tokPath, valFrac, err := tokenizeData(ctx, s, tok)
	if err != nil {
		return res, dataErr(err)
	}
	s.Options.ValFrac = valFrac
	data, err := train.OpenDataset(tokPath, s.Options.Seq, valFrac)
	if err != nil {
		return res, dataErr(err)
	}
	defer data.Close()
	res.TokensInData = data.Tokens()
	tr, err := train.New(s.Config, data, s.Options)
	if err != nil {
		return res, dataErr(err)
	}
	defer tr.Close()
	if s.InitDir != "" {
		if err := tr.InitFromHF(s.InitDir); err != nil {
			return res, fmt.Errorf("parent weights: %w: %w", err, ErrPrecondition)
		}
	}
	ckpt := filepath.Join(s.OutDir, train.CheckpointName)
	if _, err := os.Stat(ckpt); err == nil {
		if err := tr.LoadCheckpoint(ckpt); err != nil {
			return res, fmt.Errorf("resume: %w", err)
		}
		res.ResumedAt = tr.StepsDone()
	}
	o := tr.Options()
	stepTokens := uint64(o.Batch * o.Seq * o.Accum)
	start := time.Now()
	var last Metrics
	err = tr.Run(ctx, train.RunConfig{
		OutDir: s.OutDir, TokenizerPath: s.TokenizerPath, ExportDType: "F32",
		EvalEvery: s.EvalEvery, CheckpointEvery: s.CheckpointEvery,
		Progress: func(p train.Progress) {
			m := Metrics{
				Step: p.Step, TotalSteps: p.Steps, Loss: p.Loss, ValLoss: last.ValLoss, ValPerplexity: last.ValPerplexity,
				LearningRate: p.LR, GradNorm: p.GradNorm, TokensPerSecond: p.TokensPerSec,
				Tokens: uint64(p.Step) * stepTokens, ETASeconds: p.ETA.Seconds(), ElapsedSeconds: time.Since(start).Seconds(),
			}
			if p.HasVal {
				m.ValLoss, m.ValPerplexity = p.ValLoss, math.Exp(min(p.ValLoss, 700))
			}
			last = m
			ev := Event{Metrics: m, Validated: p.HasVal}
			if p.Step == p.Steps || (s.CheckpointEvery > 0 && p.Step%s.CheckpointEvery == 0) {
				ev.Checkpoint = ckpt
			}
			event(ev)
		},
	})
	if err != nil {
		return res, err
	}
	res.TrainLoss, res.ValLoss = last.Loss, last.ValLoss
	return res, nil
}

// tokenizeData tokenises the data (once: a resumed run finds the tokens in
// OutDir) and returns the token file and its validation fraction. A
// separate validation file is appended to the training tokens, and the
// fraction chosen so that the validation split starts after the last whole
// training sequence: no validation token is trained on (the split's first
// sequence may begin with the untrained tail of the training text).
func tokenizeData(ctx context.Context, s RunSpec, tok *tokenizer.Tokenizer) (string, float64, error) {
	sep := -1
	if len(s.Config.EOSTokenIDs) > 0 {
		sep = s.Config.EOSTokenIDs[0]
	}
	tokPath, valPath := filepath.Join(s.OutDir, tokensFile), filepath.Join(s.OutDir, valTokensFile)
	if _, err := os.Stat(tokPath); errors.Is(err, fs.ErrNotExist) {
		if s.ValidationPath == "" {
			if _, err := train.Tokenize(ctx, s.DataPath, tokPath, tok, sep); err != nil {
				return "", 0, fmt.Errorf("tokenize: %w", err)
			}
		} else if err := tokenizePair(ctx, s, tok, sep, tokPath, valPath); err != nil {
			return "", 0, err
		}
	}
	if s.ValidationPath == "" {
		return tokPath, s.Options.ValFrac, nil
	}
	all, err1 := os.Stat(tokPath)
	val, err2 := os.Stat(valPath)
	if err := errors.Join(err1, err2); err != nil {
		return "", 0, fmt.Errorf("tokens: %w", err)
	}
	total, nval, seq := all.Size()/4, val.Size()/4, int64(s.Options.Seq)
	nseq, trainSeqs := (total-1)/seq, (total-nval-1)/seq
	if nseq-trainSeqs < 1 || trainSeqs < 1 {
		return "", 0, fmt.Errorf("%w: %d training and %d validation tokens make %d training and %d validation sequences of %d+1 tokens, need one of each",
			train.ErrData, total-nval, nval, max(trainSeqs, 0), max(nseq-trainSeqs, 0), seq)
	}
	// OpenDataset holds out ceil(frac*nseq) sequences: exactly nseq-trainSeqs.
	return tokPath, (float64(nseq-trainSeqs) - 0.5) / float64(nseq), nil
}

// tokenizePair writes the training tokens followed by the validation tokens
// to tokPath (and the validation tokens alone to valPath, for their count).
func tokenizePair(ctx context.Context, s RunSpec, tok *tokenizer.Tokenizer, sep int, tokPath, valPath string) error {
	trainOnly := tokPath + ".train"
	defer os.Remove(trainOnly)
	if _, err := train.Tokenize(ctx, s.DataPath, trainOnly, tok, sep); err != nil {
		return fmt.Errorf("tokenize: %w", err)
	}
	if _, err := train.Tokenize(ctx, s.ValidationPath, valPath, tok, sep); err != nil {
		return fmt.Errorf("tokenize validation: %w", err)
	}
	tmp := tokPath + ".part"
	defer os.Remove(tmp)
	out, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	for _, p := range []string{trainOnly, valPath} { // streamed: corpora may exceed memory
		if err = appendFile(out, p); err != nil {
			break
		}
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	return os.Rename(tmp, tokPath)
}

func appendFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// dataErr marks the data and option errors of shared/train as bad input.
func dataErr(err error) error {
	if errors.Is(err, train.ErrData) || errors.Is(err, train.ErrOptions) {
		return fmt.Errorf("%w: %w", err, jobs.ErrInvalid)
	}
	return err
}
