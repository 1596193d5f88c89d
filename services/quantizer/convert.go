package quantizer

import (
	"fmt"
	"math"
	"time"

	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/artifact"
	"github.com/bitnet-mesh/bitnet-mesh/shared/errcode"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// kinds maps the error kinds of the Quantizer and the registry to gRPC
// codes (a function so that no package state can be mutated).
func kinds() []errcode.Kind {
	return append([]errcode.Kind{
		{Err: ErrCheckpoint, Code: codes.FailedPrecondition},
		{Err: model.ErrOverBudget, Code: codes.ResourceExhausted},
	}, append(jobs.ErrorKinds(), artifact.ErrorKinds()...)...)
}

// code maps an error to a gRPC status code.
func code(err error) codes.Code { return errcode.Code(err, kinds()...) }

// toStatus converts an error to a gRPC status error, keeping the message.
func toStatus(err error) error { return errcode.Status(err, kinds()...) }

func formatFromPB(f modelv1.ModelFormat) (artifact.Format, error) {
	if out, ok := artifact.FormatFromPB(f); ok {
		return out, nil
	}
	return "", fmt.Errorf("source files: format %v: %w", f, jobs.ErrInvalid)
}

func targetFromPB(t modelv1.QuantType) (artifact.QuantType, error) {
	switch q, _ := artifact.QuantFromPB(t); q {
	case "", artifact.QuantTQ20, artifact.QuantTQ10, artifact.QuantI2S:
		return q, nil
	}
	return "", fmt.Errorf("target %v: want QUANT_TYPE_TQ2_0, QUANT_TYPE_TQ1_0 or QUANT_TYPE_I2_S: %w", t, jobs.ErrInvalid)
}

// targetToPB converts a job's target (TQ2_0 when not given).
func targetToPB(t artifact.QuantType) modelv1.QuantType {
	if t == "" {
		t = artifact.QuantTQ20
	}
	return artifact.QuantToPB(t)
}

func requestFromPB(req *quantizerv1.CreateJobRequest) (Request, error) {
	var r Request
	switch src := req.GetSource().GetSource().(type) {
	case *quantizerv1.Source_Model:
		if src.Model == "" {
			return r, fmt.Errorf("source model: empty: %w", jobs.ErrInvalid)
		}
		r.Model = src.Model
	case *quantizerv1.Source_Files:
		f, err := formatFromPB(src.Files.GetFormat())
		if err != nil {
			return r, err
		}
		r.FilesFormat = f
		if len(src.Files.GetFiles()) == 0 {
			return r, fmt.Errorf("source files: none given: %w", jobs.ErrInvalid)
		}
		for _, f := range src.Files.GetFiles() {
			r.Files = append(r.Files, SourceFile{Path: f.GetPath(), Digest: artifact.Digest(f.GetSha256())})
		}
	default:
		return r, fmt.Errorf("source: want a model or files: %w", jobs.ErrInvalid)
	}
	t, err := targetFromPB(req.GetTarget())
	if err != nil {
		return r, err
	}
	r.Target = t
	if o := req.GetOutput(); o != nil {
		r.Output = Output{Name: o.GetName(), Aliases: o.GetAliases(), Description: o.GetDescription(), Labels: o.GetLabels()}
	}
	if c := req.GetCalibration(); c != nil {
		r.Calibration = &Calibration{
			Text: c.GetText(), TextDigest: artifact.Digest(c.GetTextSha256()),
			MaxTokens: asInt(c.GetMaxTokens()), ContextLength: asInt(c.GetContextLength()),
		}
	}
	r.Threads = asInt(req.GetThreads())
	r.RequestID = req.GetRequestId()
	return r, nil
}

// asInt converts as given, so that a rejected value is reported as sent (an
// int holds every uint32 on 64-bit platforms; a 32-bit int saturates).
func asInt(v uint32) int { return int(min(uint64(v), math.MaxInt)) }

func requestToPB(r Request) *quantizerv1.CreateJobRequest {
	out := &quantizerv1.CreateJobRequest{
		Target:    targetToPB(r.Target),
		Output:    &quantizerv1.Output{Name: r.Output.Name, Aliases: r.Output.Aliases, Description: r.Output.Description, Labels: r.Output.Labels},
		Threads:   uint32(r.Threads),
		RequestId: r.RequestID,
	}
	switch {
	case r.Model != "":
		out.Source = &quantizerv1.Source{Source: &quantizerv1.Source_Model{Model: r.Model}}
	case len(r.Files) > 0:
		sf := &quantizerv1.SourceFiles{Format: artifact.FormatToPB(r.FilesFormat)}
		for _, f := range r.Files {
			sf.Files = append(sf.Files, &quantizerv1.SourceFile{Path: f.Path, Sha256: f.Digest.Hex()})
		}
		out.Source = &quantizerv1.Source{Source: &quantizerv1.Source_Files{Files: sf}}
	}
	if c := r.Calibration; c != nil && !c.Disabled {
		pc := &quantizerv1.Calibration{MaxTokens: uint32(c.MaxTokens), ContextLength: uint32(c.ContextLength)}
		if c.TextDigest != "" {
			pc.TextSource = &quantizerv1.Calibration_TextSha256{TextSha256: c.TextDigest.Hex()}
		} else {
			pc.TextSource = &quantizerv1.Calibration_Text{Text: c.Text}
		}
		out.Calibration = pc
	}
	return out
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// jobToPB converts a job; linears adds the report's per-linear entries
// and log the job's log (both left out of listings).
func jobToPB(j Job, linears, log bool) *quantizerv1.Job {
	p := j.Progress
	out := &quantizerv1.Job{
		JobId:   j.ID,
		State:   jobs.StateToPB(j.State),
		Request: requestToPB(j.Request),
		Progress: &modelv1.Progress{
			Phase: p.Phase, Done: p.Done, Total: p.Total, Unit: p.Unit, Fraction: p.Fraction,
			Message: p.Message, UpdateTime: ts(p.UpdateTime),
		},
		CreateTime: ts(j.CreateTime),
		StartTime:  ts(j.StartTime),
		EndTime:    ts(j.EndTime),
	}
	if j.Result != nil {
		out.Result = &modelv1.ModelRef{Name: j.Result.Name, Version: j.Result.Version}
	}
	if j.Err != nil {
		out.Error = &rpcstatus.Status{Code: int32(code(j.Err)), Message: j.Err.Error()}
	}
	if log {
		out.Log = jobs.LogProto(j.Log)
	}
	r := j.Report
	out.Report = &quantizerv1.Report{
		PerplexityBefore: r.PerplexityBefore, PerplexityAfter: r.PerplexityAfter, MeanKl: r.MeanKL,
		CalibrationTokens: uint32(r.CalibrationTokens), Top1Agreement: r.Top1Agreement,
		SourceSizeBytes: r.SourceSizeBytes, ResultSizeBytes: r.ResultSizeBytes, ParameterCount: r.ParameterCount,
		Family: r.Family, Architecture: r.Architecture,
		GgufArchitecture: r.GGUFArch,
	}
	if linears {
		for _, l := range r.Linears {
			out.Report.Linears = append(out.Report.Linears, &quantizerv1.LinearReport{
				Name: l.Name, Rows: uint32(l.Rows), Cols: uint32(l.Cols),
				ZerosFraction: l.ZerosFraction, Scale: l.Scale, RelativeError: l.RelativeError,
				GgufType: typeChoiceToPB(l.GGUF, r.GGUFArch != ""),
			})
		}
	}
	return out
}

// typeChoiceToPB converts a linear's GGUF type, nil until the plan is made.
func typeChoiceToPB(t model.TensorChoice, planned bool) *quantizerv1.QuantTypeChoice {
	if !planned || t.Name == "" {
		return nil
	}
	return &quantizerv1.QuantTypeChoice{Tensor: t.Name, Type: t.Type.String(), Reason: t.Reason}
}
