package trainer

import (
	"fmt"
	"math"
	"time"

	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	trainerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/trainer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/artifact"
	"github.com/bitnet-mesh/bitnet-mesh/shared/errcode"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// kinds maps the error kinds of the Trainer and the registry to gRPC
// codes (a function so that no package state can be mutated).
func kinds() []errcode.Kind {
	return append([]errcode.Kind{
		{Err: ErrPrecondition, Code: codes.FailedPrecondition},
		{Err: model.ErrOverBudget, Code: codes.ResourceExhausted},
		{Err: model.ErrConfig, Code: codes.InvalidArgument},
	}, append(jobs.ErrorKinds(), artifact.ErrorKinds()...)...)
}

// code maps an error to a gRPC status code.
func code(err error) codes.Code { return errcode.Code(err, kinds()...) }

// toStatus converts an error to a gRPC status error, keeping the message.
func toStatus(err error) error { return errcode.Status(err, kinds()...) }

// schedulesPB is a function so that no package state can be mutated.
func schedulesPB() map[string]trainerv1.Schedule {
	return map[string]trainerv1.Schedule{
		ScheduleCosine: trainerv1.Schedule_SCHEDULE_COSINE, ScheduleTwoStage: trainerv1.Schedule_SCHEDULE_TWO_STAGE,
		ScheduleConstant: trainerv1.Schedule_SCHEDULE_CONSTANT,
	}
}

func requestFromPB(req *trainerv1.CreateJobRequest) (Request, error) {
	var r Request
	pm := req.GetModel()
	if pm == nil || req.GetDataset() == nil || req.GetHyperparameters() == nil {
		return r, fmt.Errorf("model, dataset and hyperparameters are required: %w", jobs.ErrInvalid)
	}
	switch init := pm.GetInit().(type) {
	case *trainerv1.ModelSpec_ConfigJson:
		r.Model.ConfigJSON = init.ConfigJson
	case *trainerv1.ModelSpec_Parent:
		r.Model.Parent = init.Parent
	}
	r.Model.TokenizerDigest = artifact.Digest(pm.GetTokenizerSha256())
	r.Model.InitStd, r.Model.FullPrecision = pm.GetInitStd(), pm.GetFullPrecision()

	d := req.GetDataset()
	switch d.GetFormat() {
	case trainerv1.DatasetFormat_DATASET_FORMAT_UNSPECIFIED, trainerv1.DatasetFormat_DATASET_FORMAT_TEXT:
	case trainerv1.DatasetFormat_DATASET_FORMAT_JSONL:
		r.Dataset.JSONL = true
	default:
		return r, fmt.Errorf("dataset: format %v: %w", d.GetFormat(), jobs.ErrInvalid)
	}
	if f := d.GetTextField(); f != "" && f != "text" {
		return r, fmt.Errorf("dataset: text field %q: only \"text\" is supported: %w", f, jobs.ErrInvalid)
	}
	if len(d.GetSha256()) == 0 {
		return r, fmt.Errorf("dataset: no files: %w", jobs.ErrInvalid)
	}
	for _, s := range d.GetSha256() {
		r.Dataset.Digests = append(r.Dataset.Digests, artifact.Digest(s))
	}
	r.Dataset.ValidationFraction = d.GetValidationFraction()
	r.Dataset.ValidationDigest = artifact.Digest(d.GetValidationSha256())

	h := req.GetHyperparameters()
	// As given, so that a rejected value is reported as sent (an int holds
	// every uint32 on 64-bit platforms; a 32-bit int saturates).
	big := func(v uint32) int { return int(min(uint64(v), math.MaxInt)) }
	r.Hyperparameters = Hyperparameters{
		Steps: big(h.GetSteps()), BatchSize: big(h.GetBatchSize()), SeqLen: big(h.GetSeqLen()),
		GradAccumulation: big(h.GetGradAccumulation()), LearningRate: h.GetLearningRate(),
		WarmupFraction: h.GetWarmupFraction(), WarmupSteps: big(h.GetWarmupSteps()), MinLRFraction: h.GetMinLrFraction(),
		Beta1: h.GetBeta1(), Beta2: h.GetBeta2(), Epsilon: h.GetEpsilon(), Seed: h.GetSeed(),
		WeightDecay: h.WeightDecay, GradClip: h.GradClip,
	}
	switch h.GetSchedule() {
	case trainerv1.Schedule_SCHEDULE_UNSPECIFIED:
	default:
		for k, v := range schedulesPB() {
			if v == h.GetSchedule() {
				r.Hyperparameters.Schedule = k
			}
		}
		if r.Hyperparameters.Schedule == "" {
			return r, fmt.Errorf("hyperparameters: schedule %v: %w", h.GetSchedule(), jobs.ErrInvalid)
		}
	}
	if o := req.GetOutput(); o != nil {
		r.Output = Output{Name: o.GetName(), Aliases: o.GetAliases(), Description: o.GetDescription(), Labels: o.GetLabels()}
		switch q, _ := artifact.QuantFromPB(o.GetExportGguf()); q {
		case "", artifact.QuantTQ20, artifact.QuantTQ10:
			r.Output.ExportGGUF = q
		default:
			return r, fmt.Errorf("output: GGUF export %v: want QUANT_TYPE_TQ2_0 or QUANT_TYPE_TQ1_0: %w", o.GetExportGguf(), jobs.ErrInvalid)
		}
	}
	r.EvalInterval, r.EvalTokens = big(req.GetEvalInterval()), big(req.GetEvalTokens())
	r.CheckpointInterval, r.Threads = big(req.GetCheckpointInterval()), big(req.GetThreads())
	r.RequestID = req.GetRequestId()
	return r, nil
}

func requestToPB(r Request) *trainerv1.CreateJobRequest {
	m := &trainerv1.ModelSpec{TokenizerSha256: r.Model.TokenizerDigest.Hex(), InitStd: r.Model.InitStd, FullPrecision: r.Model.FullPrecision}
	if r.Model.Parent != "" {
		m.Init = &trainerv1.ModelSpec_Parent{Parent: r.Model.Parent}
	} else {
		m.Init = &trainerv1.ModelSpec_ConfigJson{ConfigJson: r.Model.ConfigJSON}
	}
	d := &trainerv1.Dataset{
		Format: trainerv1.DatasetFormat_DATASET_FORMAT_TEXT, ValidationFraction: r.Dataset.ValidationFraction,
		ValidationSha256: r.Dataset.ValidationDigest.Hex(),
	}
	if r.Dataset.JSONL {
		d.Format, d.TextField = trainerv1.DatasetFormat_DATASET_FORMAT_JSONL, "text"
	}
	for _, dg := range r.Dataset.Digests {
		d.Sha256 = append(d.Sha256, dg.Hex())
	}
	h := r.Hyperparameters
	ph := &trainerv1.Hyperparameters{
		Steps: uint32(h.Steps), BatchSize: uint32(h.BatchSize), SeqLen: uint32(h.SeqLen), GradAccumulation: uint32(h.GradAccumulation),
		LearningRate: h.LearningRate, Schedule: schedulesPB()[h.Schedule], WarmupFraction: h.WarmupFraction,
		WarmupSteps: uint32(h.WarmupSteps), MinLrFraction: h.MinLRFraction, WeightDecay: h.WeightDecay,
		Beta1: h.Beta1, Beta2: h.Beta2, Epsilon: h.Epsilon, GradClip: h.GradClip, Seed: h.Seed,
	}
	return &trainerv1.CreateJobRequest{
		Model: m, Dataset: d, Hyperparameters: ph,
		Output:       &trainerv1.Output{Name: r.Output.Name, Aliases: r.Output.Aliases, Description: r.Output.Description, Labels: r.Output.Labels, ExportGguf: artifact.QuantToPB(r.Output.ExportGGUF)},
		EvalInterval: uint32(r.EvalInterval), EvalTokens: uint32(r.EvalTokens), CheckpointInterval: uint32(r.CheckpointInterval),
		Threads: uint32(r.Threads), RequestId: r.RequestID,
	}
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func jobToPB(j Job) *trainerv1.Job {
	m := j.Metrics
	out := &trainerv1.Job{
		JobId: j.ID, State: jobs.StateToPB(j.State), Request: requestToPB(j.Request),
		Metrics: &trainerv1.StepMetrics{
			Step: uint32(m.Step), TotalSteps: uint32(m.TotalSteps), Loss: m.Loss, ValLoss: m.ValLoss,
			ValPerplexity: m.ValPerplexity, LearningRate: m.LearningRate, GradNorm: m.GradNorm,
			TokensPerSecond: m.TokensPerSecond, Tokens: m.Tokens, EtaSeconds: m.ETASeconds, ElapsedSeconds: m.ElapsedSeconds,
		},
		DatasetSha256: j.DatasetDigest.Hex(), Runner: j.Runner,
		CreateTime: ts(j.CreateTime), StartTime: ts(j.StartTime), EndTime: ts(j.EndTime),
	}
	for _, v := range j.Validation {
		out.Validation = append(out.Validation, &trainerv1.ValidationPoint{Step: uint32(v.Step), ValLoss: v.ValLoss})
	}
	for _, p := range j.LossCurve {
		out.LossCurve = append(out.LossCurve, &trainerv1.LossPoint{Step: uint32(p.Step), Loss: p.Loss})
	}
	out.Log = jobs.LogProto(j.Log)
	for _, c := range j.Checkpoints {
		out.Checkpoints = append(out.Checkpoints, &trainerv1.Checkpoint{
			Step: uint32(c.Step), Sha256: c.Digest.Hex(), SizeBytes: uint64(c.SizeBytes), ValLoss: c.ValLoss, CreateTime: ts(c.CreateTime),
		})
	}
	for _, r := range j.Results {
		out.Results = append(out.Results, &modelv1.ModelRef{Name: r.Name, Version: r.Version})
	}
	if j.Err != nil {
		out.Error = &rpcstatus.Status{Code: int32(code(j.Err)), Message: j.Err.Error()}
	}
	return out
}
