package trainer

import (
	"errors"
	"fmt"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/artifact"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
)

// Error kinds of the Trainer (test with errors.Is), beside the shared ones
// of package jobs (jobs.ErrNotFound, jobs.ErrInvalid, ...); the gRPC layer
// maps them to status codes. Registry errors (artifact.ErrNotFound, ...)
// pass through wrapped.
var (
	// ErrPrecondition: the parent model cannot be fine-tuned (a GGUF-only
	// version, missing config.json or weights).
	ErrPrecondition = errors.New("failed precondition")
)

// errClosed is the error of calls on a closed Trainer.
func errClosed() error { return fmt.Errorf("trainer %w", jobs.ErrClosed) }

// Schedules of the learning rate.
const (
	ScheduleCosine   = "cosine"    // warmup, cosine decay to MinLRFraction
	ScheduleTwoStage = "two-stage" // BitNet b1.58's two linear stages
	ScheduleConstant = "constant"  // warmup, then constant
)

// Limits and defaults of a Request.
const (
	MaxInlineText     = 1 << 20 // bytes of inline training text
	MaxSteps          = 10_000_000
	MaxDatasetFiles   = 1000
	DefaultOutputName = "trained"
	maxListPageSize   = jobs.MaxPageSize
	maxConfigJSON     = 1 << 20
	ggufBlock         = 256 // weights per TQ1_0/TQ2_0 block
)

// Dataset is the training data: registry blobs (plain text or JSONL) or,
// for in-process callers, inline text.
type Dataset struct {
	Digests            []artifact.Digest // files, read in order
	Text               string            // inline text (instead of Digests)
	JSONL              bool              // JSON Lines with a "text" field per line
	ValidationFraction float64           // 0 to 0.5; 0: 0.05
	// ValidationDigest is a separate validation file (same format); it
	// overrides ValidationFraction.
	ValidationDigest artifact.Digest
}

// ModelSpec is the model to train: from scratch (ConfigJSON) or a fine-tune
// of a registry model (Parent).
type ModelSpec struct {
	ConfigJSON      string          // Hugging Face BitNet config.json
	Parent          string          // NAME, NAME@N or NAME:ALIAS; Create pins it to NAME@N
	TokenizerDigest artifact.Digest // tokenizer.json blob; may be empty with a Parent
	InitStd         float64         // scratch only; 0: 0.02
	FullPrecision   bool            // train without quantisers (comparisons)
}

// Hyperparameters are the optimisation settings; zeros take the defaults
// given (Create fills them in).
type Hyperparameters struct {
	Steps            int      // required
	BatchSize        int      // 0: 8
	SeqLen           int      // 0: min(128, context)
	GradAccumulation int      // 0: 1
	LearningRate     float64  // 0: 2e-3
	Schedule         string   // "": cosine
	WarmupFraction   float64  // 0: 0.05 (ignored when WarmupSteps > 0)
	WarmupSteps      int      // overrides WarmupFraction
	MinLRFraction    float64  // 0: 0.1
	WeightDecay      *float64 // nil: 0.1
	Beta1, Beta2     float64  // 0: 0.9, 0.95
	Epsilon          float64  // 0: 1e-8
	GradClip         *float64 // nil: 1.0; 0 disables
	Seed             uint64
}

// Output says where the result goes.
type Output struct {
	Name        string // registry model; default: the parent's name or DefaultOutputName
	Aliases     []string
	Description string
	Labels      map[string]string
	// ExportGGUF, when artifact.QuantTQ20 or QuantTQ10, also publishes the
	// result as a llama.cpp GGUF of that type: a second version (the
	// Hugging Face one is its lineage parent). Every linear's input width
	// must be a multiple of 256 (TQ blocks).
	ExportGGUF artifact.QuantType
}

// Request describes a job.
type Request struct {
	Model              ModelSpec
	Dataset            Dataset
	Hyperparameters    Hyperparameters
	Output             Output
	EvalInterval       int // validate every N steps; 0: steps/10
	EvalTokens         int // validation tokens per evaluation; 0: all
	CheckpointInterval int // 0: steps/4
	Threads            int // 0: all cores
	RequestID          string
}

// Metrics are a job's latest step metrics.
type Metrics struct {
	Step, TotalSteps int
	Loss             float64
	ValLoss          float64 // 0 before the first validation
	ValPerplexity    float64
	LearningRate     float64
	GradNorm         float64
	TokensPerSecond  float64
	Tokens           uint64
	ETASeconds       float64
	ElapsedSeconds   float64
}

// ValidationPoint is a point of the validation loss curve.
type ValidationPoint struct {
	Step    int
	ValLoss float64
}

// LossPoint is a point of the training loss curve.
type LossPoint struct {
	Step int
	Loss float64
}

// MaxLossPoints bounds Job.LossCurve (see appendLoss).
const MaxLossPoints = 512

// Checkpoint is a resumable training state written by a job: a file in the
// job's work directory, also stored as a registry blob.
type Checkpoint struct {
	Step       int
	Digest     artifact.Digest
	SizeBytes  int64
	ValLoss    float64
	CreateTime time.Time
}

// Job is a snapshot of a job.
type Job struct {
	ID            string
	State         jobs.State
	Request       Request // defaults filled in, Parent pinned to a version
	Metrics       Metrics
	Validation    []ValidationPoint
	LossCurve     []LossPoint // by step, thinned to at most MaxLossPoints
	Log           []jobs.LogEntry
	Checkpoints   []Checkpoint
	Results       []artifact.Ref // versions written when succeeded
	DatasetDigest artifact.Digest
	Err           error // set when failed or cancelled
	Runner        string
	CreateTime    time.Time
	StartTime     time.Time // zero while queued
	EndTime       time.Time // zero until terminal
}

// ListOptions pages through jobs, newest first. PageSize 0 means 100 (at
// most 1000); PageToken is the previous page's next token; jobs.State filters
// when not zero.
type ListOptions struct {
	PageSize  int
	PageToken string
	State     jobs.State
}
