package quantizer

import (
	"errors"
	"fmt"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/artifact"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// Error kinds of the Quantizer (test with errors.Is), beside the shared
// ones of package jobs (jobs.ErrNotFound, jobs.ErrInvalid, ...); the gRPC
// layer maps them to status codes. Registry errors (artifact.ErrNotFound,
// ...) pass through wrapped.
var (
	// ErrCheckpoint: the source checkpoint cannot be loaded or quantized
	// (missing config, bad tensors, shapes the target cannot hold).
	ErrCheckpoint = errors.New("bad checkpoint")
)

// errClosed is the error of calls on a closed Quantizer.
func errClosed() error { return fmt.Errorf("quantizer %w", jobs.ErrClosed) }

// Phases of a running job (Progress.Phase).
const (
	PhaseQueued     = "queued"
	PhaseFetching   = "fetching"
	PhaseLoading    = "loading"
	PhaseQuantizing = "quantizing"
	PhaseEvaluating = "evaluating"
	PhaseUploading  = "uploading"
	PhaseDone       = "done"
)

// Limits and defaults of a Request.
const (
	MaxCalibrationText    = 1 << 20 // bytes of inline calibration text
	DefaultCalibTokens    = 4096
	DefaultCalibContext   = 512
	DefaultOutputName     = "quantized"
	ggufFileName          = "model.gguf"
	ggufMediaType         = "application/vnd.gguf"
	maxListPageSize       = jobs.MaxPageSize
	maxCalibTokensAllowed = 1 << 20
)

// SourceFile is one file of a checkpoint given as registry blobs.
type SourceFile struct {
	Path   string          // path inside the checkpoint, e.g. "config.json"
	Digest artifact.Digest // blob holding its bytes
}

// Request describes a job. Exactly one of Model, Files or Path is set.
type Request struct {
	// Model is a registry reference (NAME, NAME@N, NAME:ALIAS); Create pins
	// it to the version it resolves to.
	Model string
	// Files are uploaded blobs forming a checkpoint of format FilesFormat.
	Files       []SourceFile
	FilesFormat artifact.Format
	// Path is a local Hugging Face directory or .gguf file (in-process
	// callers only; the gRPC API has no such field).
	Path string

	Target      artifact.QuantType // artifact.QuantTQ20 (default) or QuantTQ10
	Output      Output
	Calibration *Calibration // nil: the built-in English text
	Threads     int          // kernel threads; 0: all cores
	RequestID   string       // idempotency key
}

// Output says where the result goes.
type Output struct {
	Name        string // registry model; default: the source model's name or DefaultOutputName
	Aliases     []string
	Description string
	Labels      map[string]string
}

// Calibration is the text the before/after comparison runs on.
type Calibration struct {
	Text          string          // inline text
	TextDigest    artifact.Digest // or a UTF-8 text blob
	MaxTokens     int             // 0: DefaultCalibTokens
	ContextLength int             // 0: DefaultCalibContext (capped at the model's context)
	Disabled      bool            // no calibration: per-linear statistics only
}

// Progress says where a job is.
type Progress struct {
	Phase      string
	Done       uint64
	Total      uint64
	Unit       string // "bytes", "tensors", "tokens"
	Fraction   float64
	Message    string
	UpdateTime time.Time
}

// LinearReport holds the quantization statistics of one linear weight.
type LinearReport struct {
	Name          string // HF tensor name, e.g. model.layers.0.self_attn.q_proj.weight
	Rows, Cols    int
	ZerosFraction float64
	Scale         float64
	RelativeError float64
	// GGUF is the tensor's name and type in the result and why that type
	// (model.PlanGGUF); zero until the plan is made.
	GGUF model.TensorChoice
}

// Report is a job's quality report.
type Report struct {
	Linears           []LinearReport
	PerplexityBefore  float64
	PerplexityAfter   float64
	MeanKL            float64 // nats, KL(before || after)
	CalibrationTokens int     // tokens scored
	Top1Agreement     float64
	SourceSizeBytes   uint64
	ResultSizeBytes   uint64
	ParameterCount    uint64
	Family            string // model.Family of the source
	Architecture      string // its Hugging Face architecture
	GGUFArch          string // general.architecture of the result
}

// Job is a snapshot of a job.
type Job struct {
	ID         string
	State      jobs.State
	Request    Request // with defaults filled in and Model pinned to a version
	Progress   Progress
	Result     *artifact.Ref // set when succeeded
	Report     Report
	Log        []jobs.LogEntry
	Err        error // set when failed or cancelled
	CreateTime time.Time
	StartTime  time.Time // zero while queued
	EndTime    time.Time // zero until terminal
}

// ListOptions pages through jobs, newest first. PageSize 0 means 100 (at
// most 1000); PageToken is the previous page's next token; jobs.State filters
// when not zero.
type ListOptions struct {
	PageSize  int
	PageToken string
	State     jobs.State
}
