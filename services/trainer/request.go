package trainer

import (
	"context"
	"fmt"
	"io"
	"math"

	"github.com/bitnet-mesh/bitnet-mesh/shared/artifact"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/train"
)

// Files of a Hugging Face directory the trainer reads and writes.
const (
	configFile    = "config.json"
	weightsFile   = "model.safetensors"
	tokenizerFile = "tokenizer.json"
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, jobs.ErrInvalid)...)
}

// prepare validates req, checks that its blobs and parent exist, pins the
// parent to a version and fills in the defaults.
func (t *Trainer) prepare(ctx context.Context, req Request) (Request, error) {
	m := &req.Model
	var cfg model.Config
	switch {
	case (m.ConfigJSON == "") == (m.Parent == ""):
		return req, invalidf("model: want exactly one of config_json and parent")
	case m.ConfigJSON != "":
		if len(m.ConfigJSON) > maxConfigJSON {
			return req, invalidf("model config: %d bytes, at most %d", len(m.ConfigJSON), maxConfigJSON)
		}
		c, err := model.ParseConfig([]byte(m.ConfigJSON))
		if err != nil {
			return req, invalidf("model config: %v", err)
		}
		cfg = c
		if m.TokenizerDigest == "" {
			return req, invalidf("model: a scratch job needs a tokenizer blob")
		}
		if m.InitStd == 0 {
			m.InitStd = 0.02
		}
		if !(m.InitStd > 0) || math.IsInf(m.InitStd, 0) {
			return req, invalidf("model: init std %v must be positive and finite", m.InitStd)
		}
	default:
		v, c, err := t.parentConfig(ctx, m.Parent)
		if err != nil {
			return req, err
		}
		cfg, m.Parent = c, v.Ref.Name+"@"+fmt.Sprint(v.Ref.Version)
		if m.TokenizerDigest == "" && fileOf(v, tokenizerFile) == nil {
			return req, invalidf("model: parent %s has no %s: give a tokenizer blob", m.Parent, tokenizerFile)
		}
		if m.InitStd == 0 {
			m.InitStd = 0.02
		}
		if req.Output.Name == "" {
			req.Output.Name = v.Ref.Name
		}
	}
	if m.TokenizerDigest != "" {
		d, err := t.checkBlob(ctx, "tokenizer", string(m.TokenizerDigest))
		if err != nil {
			return req, err
		}
		m.TokenizerDigest = d
	}
	if err := t.prepareDataset(ctx, &req.Dataset); err != nil {
		return req, err
	}
	if err := prepareHyper(&req.Hyperparameters, cfg); err != nil {
		return req, err
	}
	if err := t.checkMemory(cfg, req); err != nil {
		return req, err
	}
	steps := req.Hyperparameters.Steps
	switch {
	case req.EvalInterval < 0 || req.CheckpointInterval < 0 || req.EvalTokens < 0:
		return req, invalidf("eval interval %d, eval tokens %d and checkpoint interval %d must not be negative", req.EvalInterval, req.EvalTokens, req.CheckpointInterval)
	case req.Threads < 0 || req.Threads > 1024:
		return req, invalidf("threads %d: want 0 to 1024", req.Threads)
	}
	if req.EvalInterval == 0 {
		req.EvalInterval = max(steps/10, 1)
	}
	if req.CheckpointInterval == 0 {
		req.CheckpointInterval = max(steps/4, 1)
	}
	o := &req.Output
	if o.Name == "" {
		o.Name = DefaultOutputName
	}
	if err := artifact.ValidateName(o.Name); err != nil {
		return req, invalidf("output: %v", err)
	}
	switch o.ExportGGUF {
	case "":
	case artifact.QuantTQ20, artifact.QuantTQ10:
		if cols := []int{cfg.HiddenSize, cfg.NumHeads * cfg.HeadDim, cfg.IntermediateSize}; cols[0]%ggufBlock != 0 || cols[1]%ggufBlock != 0 || cols[2]%ggufBlock != 0 {
			return req, invalidf("output: a %s export needs hidden, attention (heads*head_dim) and intermediate sizes %v that are multiples of %d", o.ExportGGUF, cols, ggufBlock)
		}
	default:
		return req, invalidf("output: GGUF export %q: want %s or %s", o.ExportGGUF, artifact.QuantTQ20, artifact.QuantTQ10)
	}
	for _, a := range o.Aliases {
		if err := artifact.ValidateAlias(a); err != nil {
			return req, invalidf("output: %v", err)
		}
	}
	return req, nil
}

// checkMemory refuses a job whose model and batch need more memory than
// the budget (train.MemoryBytes, from the shapes alone).
func (t *Trainer) checkMemory(cfg model.Config, req Request) error {
	o := options(req)
	if err := model.CheckMemory("training "+cfg.String(), train.MemoryBytes(cfg, o), t.opts.MemoryBudget); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	return nil
}

// checkModel checks a saved request again (config limits and memory) when
// a restarted Trainer takes its job back; a job fine-tuning a parent is
// checked when it runs, once the parent is fetched.
func (t *Trainer) checkModel(req Request) error {
	if req.Model.ConfigJSON == "" {
		return nil
	}
	cfg, err := model.ParseConfig([]byte(req.Model.ConfigJSON))
	if err != nil {
		return invalidf("model config: %v", err)
	}
	return t.checkMemory(cfg, req)
}

// parentConfig resolves a parent and reads its config.json.
func (t *Trainer) parentConfig(ctx context.Context, ref string) (artifact.Version, model.Config, error) {
	if _, err := artifact.ParseRef(ref); err != nil {
		return artifact.Version{}, model.Config{}, invalidf("parent: %v", err)
	}
	v, err := t.src.Resolve(ctx, ref)
	if err != nil {
		return v, model.Config{}, fmt.Errorf("parent %s: %w", ref, err)
	}
	if v.Metadata.Format == artifact.FormatGGUF {
		return v, model.Config{}, fmt.Errorf("parent %s@%d is a GGUF-only version: fine-tuning needs a Hugging Face safetensors version (master or packed weights): %w", v.Ref.Name, v.Ref.Version, ErrPrecondition)
	}
	cf, wf := fileOf(v, configFile), fileOf(v, weightsFile)
	if wf == nil {
		wf = fileOf(v, "model.safetensors.index.json")
	}
	if cf == nil || wf == nil {
		return v, model.Config{}, fmt.Errorf("parent %s@%d: want %s and %s files: %w", v.Ref.Name, v.Ref.Version, configFile, weightsFile, ErrPrecondition)
	}
	rc, _, err := t.src.OpenBlob(ctx, cf.Digest)
	if err != nil {
		return v, model.Config{}, fmt.Errorf("parent %s config: %w", ref, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxConfigJSON))
	if err != nil {
		return v, model.Config{}, fmt.Errorf("parent %s config: %w", ref, err)
	}
	c, err := model.ParseConfig(b)
	if err != nil {
		return v, model.Config{}, fmt.Errorf("parent %s: %w: %w", ref, err, ErrPrecondition)
	}
	return v, c, nil
}

func fileOf(v artifact.Version, path string) *artifact.BlobRef {
	for i := range v.Files {
		if v.Files[i].Path == path {
			return &v.Files[i]
		}
	}
	return nil
}

// checkBlob parses a digest and checks that the blob exists.
func (t *Trainer) checkBlob(ctx context.Context, what, s string) (artifact.Digest, error) {
	d, err := artifact.ParseDigest(s)
	if err != nil {
		return "", invalidf("%s: %v", what, err)
	}
	rc, _, err := t.src.OpenBlob(ctx, d)
	if err != nil {
		return "", fmt.Errorf("%s blob %s: %w", what, d, err)
	}
	rc.Close()
	return d, nil
}

func (t *Trainer) prepareDataset(ctx context.Context, d *Dataset) error {
	switch {
	case (len(d.Digests) == 0) == (d.Text == ""):
		return invalidf("dataset: want blobs or inline text")
	case len(d.Text) > MaxInlineText:
		return invalidf("dataset: %d bytes of inline text, at most %d", len(d.Text), MaxInlineText)
	case len(d.Digests) > MaxDatasetFiles:
		return invalidf("dataset: %d files, at most %d", len(d.Digests), MaxDatasetFiles)
	}
	for i, s := range d.Digests {
		dg, err := t.checkBlob(ctx, "dataset", string(s))
		if err != nil {
			return err
		}
		d.Digests[i] = dg
	}
	if d.ValidationDigest != "" {
		dg, err := t.checkBlob(ctx, "validation", string(d.ValidationDigest))
		if err != nil {
			return err
		}
		d.ValidationDigest = dg
	}
	if d.ValidationFraction == 0 {
		d.ValidationFraction = 0.05
	}
	if !(d.ValidationFraction > 0 && d.ValidationFraction <= 0.5) {
		return invalidf("dataset: validation fraction %v: want 0 to 0.5", d.ValidationFraction)
	}
	return nil
}

func prepareHyper(h *Hyperparameters, cfg model.Config) error {
	def := train.DefaultOptions()
	setI := func(v *int, dv int) {
		if *v == 0 {
			*v = dv
		}
	}
	setF := func(v *float64, dv float64) {
		if *v == 0 {
			*v = dv
		}
	}
	setI(&h.BatchSize, def.Batch)
	setI(&h.SeqLen, min(def.Seq, cfg.MaxPositions))
	setI(&h.GradAccumulation, 1)
	setF(&h.LearningRate, def.LR)
	setF(&h.WarmupFraction, def.WarmupFrac)
	setF(&h.MinLRFraction, def.MinLRFrac)
	setF(&h.Beta1, def.Beta1)
	setF(&h.Beta2, def.Beta2)
	setF(&h.Epsilon, def.Eps)
	if h.Schedule == "" {
		h.Schedule = ScheduleCosine
	}
	if h.WeightDecay == nil {
		wd := def.WeightDecay
		h.WeightDecay = &wd
	}
	if h.GradClip == nil {
		c := def.ClipNorm
		h.GradClip = &c
	}
	switch {
	case h.Steps <= 0 || h.Steps > MaxSteps:
		return invalidf("hyperparameters: steps %d: want 1 to %d", h.Steps, MaxSteps)
	case h.BatchSize < 0 || h.SeqLen < 0 || h.GradAccumulation < 0 || h.WarmupSteps < 0:
		return invalidf("hyperparameters: batch %d, seq %d, accumulation %d and warmup steps %d must not be negative", h.BatchSize, h.SeqLen, h.GradAccumulation, h.WarmupSteps)
	case h.SeqLen > cfg.MaxPositions:
		return invalidf("hyperparameters: seq %d exceeds max_position_embeddings = %d", h.SeqLen, cfg.MaxPositions)
	case int64(h.BatchSize)*int64(h.SeqLen) > 1<<22 || h.GradAccumulation > 1<<16:
		return invalidf("hyperparameters: batch*seq = %d*%d over %d tokens or accumulation %d over %d", h.BatchSize, h.SeqLen, 1<<22, h.GradAccumulation, 1<<16)
	case h.WarmupSteps >= h.Steps:
		return invalidf("hyperparameters: warmup steps %d must be fewer than steps %d", h.WarmupSteps, h.Steps)
	case !(h.Beta1 >= 0 && h.Beta1 < 1 && h.Beta2 >= 0 && h.Beta2 < 1 && h.Epsilon > 0) || math.IsInf(h.Epsilon, 0):
		return invalidf("hyperparameters: betas %v/%v must be in [0,1) and epsilon %v positive", h.Beta1, h.Beta2, h.Epsilon)
	case !(*h.GradClip >= 0) || math.IsInf(*h.GradClip, 0):
		return invalidf("hyperparameters: gradient clip %v must be finite and not negative", *h.GradClip)
	case h.Schedule != ScheduleCosine && h.Schedule != ScheduleTwoStage && h.Schedule != ScheduleConstant:
		return invalidf("hyperparameters: schedule %q: want %s, %s or %s", h.Schedule, ScheduleCosine, ScheduleTwoStage, ScheduleConstant)
	}
	o := options(Request{Hyperparameters: *h})
	s := train.Schedule{Kind: o.Schedule, Steps: o.Steps, PeakLR: o.LR, WarmupFrac: o.WarmupFrac, MinLRFrac: o.MinLRFrac, WeightDecay: o.WeightDecay}
	if err := s.Validate(); err != nil {
		return invalidf("hyperparameters: %v", err)
	}
	return nil
}

// options maps a prepared request to shared/train's options.
func options(r Request) train.Options {
	h := r.Hyperparameters
	o := train.Options{
		Steps: h.Steps, Batch: h.BatchSize, Seq: h.SeqLen, Accum: h.GradAccumulation, LR: h.LearningRate,
		WarmupFrac: h.WarmupFraction, MinLRFrac: h.MinLRFraction, Schedule: h.Schedule,
		Beta1: h.Beta1, Beta2: h.Beta2, Eps: h.Epsilon, InitStd: r.Model.InitStd, Seed: h.Seed,
		Threads: r.Threads, FullPrec: r.Model.FullPrecision, ValFrac: r.Dataset.ValidationFraction,
	}
	if h.WeightDecay != nil {
		o.WeightDecay = *h.WeightDecay
	}
	o.ClipNorm = -1 // disabled unless set: train.Options treats <= 0 as off
	if h.GradClip != nil && *h.GradClip > 0 {
		o.ClipNorm = *h.GradClip
	}
	if h.WarmupSteps > 0 {
		o.WarmupFrac = float64(h.WarmupSteps) / float64(h.Steps)
	}
	if h.Schedule == ScheduleConstant { // cosine to 100% of the peak is constant
		o.Schedule, o.MinLRFrac = train.ScheduleCosine, 1
	}
	if r.EvalTokens > 0 {
		per := h.BatchSize * h.SeqLen
		o.EvalBatches = (r.EvalTokens + per - 1) / per
	}
	return o
}
