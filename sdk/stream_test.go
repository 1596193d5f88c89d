package sdk_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
)

// fakeInference streams the words of the prompt back, one per message.
type fakeInference struct {
	inferencev1.UnimplementedInferenceServiceServer
}

func (fakeInference) Generate(req *inferencev1.GenerateRequest, s grpc.ServerStreamingServer[inferencev1.GenerateResponse]) error {
	if req.GetModel() == "missing" {
		return grpcstatus.Error(codes.NotFound, "model missing not found")
	}
	words := strings.Fields(req.GetPrompt())
	for _, w := range words {
		if err := s.Send(&inferencev1.GenerateResponse{Text: w + " "}); err != nil {
			return err
		}
	}
	return s.Send(&inferencev1.GenerateResponse{
		FinishReason: inferencev1.FinishReason_FINISH_REASON_STOP,
		Usage:        &modelv1.Usage{CompletionTokens: uint32(len(words))},
		Node:         "node-1", Kernel: "avx2",
	})
}

func (fakeInference) ListNodes(ctx context.Context, req *inferencev1.ListNodesRequest) (*inferencev1.ListNodesResponse, error) {
	return &inferencev1.ListNodesResponse{Nodes: []*inferencev1.Node{{Name: "node-1", Hardware: &modelv1.Hardware{Kernel: "avx2"}}}}, nil
}

func TestGenerateStream(t *testing.T) {
	c := startServer(t, func(g grpc.ServiceRegistrar) { inferencev1.RegisterInferenceServiceServer(g, fakeInference{}) })
	ctx := context.Background()
	s, err := c.Inference().Generate(ctx, &inferencev1.GenerateRequest{Model: "tiny", Prompt: "a b c"})
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for s.Next() {
		text.WriteString(s.Text())
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if text.String() != "a b c " {
		t.Errorf("got text %q, want %q", text.String(), "a b c ")
	}
	if f := s.Final(); f.GetNode() != "node-1" || f.GetUsage().GetCompletionTokens() != 3 {
		t.Errorf("got final %v, want node-1 with 3 tokens", f)
	}

	var got []string
	final, err := c.Inference().GenerateText(ctx, &inferencev1.GenerateRequest{Model: "tiny", Prompt: "x y"}, func(s string) error {
		got = append(got, s)
		return nil
	})
	if err != nil || strings.Join(got, "|") != "x |y " || final.GetKernel() != "avx2" {
		t.Errorf("got %q, %v, %v, want x |y  with kernel avx2", got, final, err)
	}

	_, err = c.Inference().GenerateText(ctx, &inferencev1.GenerateRequest{Model: "missing"}, nil)
	if grpcstatus.Code(err) != codes.NotFound {
		t.Errorf("got %v, want NotFound", err)
	}
	nodes, err := c.Inference().ListNodes(ctx, "")
	if err != nil || len(nodes) != 1 {
		t.Errorf("got %v, %v, want one node", nodes, err)
	}
}

// fakeQuantizer runs every job through three snapshots; a job whose
// output is named "fail" fails.
type fakeQuantizer struct {
	quantizerv1.UnimplementedQuantizerServiceServer
}

func (fakeQuantizer) CreateJob(ctx context.Context, req *quantizerv1.CreateJobRequest) (*quantizerv1.CreateJobResponse, error) {
	return &quantizerv1.CreateJobResponse{Job: &quantizerv1.Job{JobId: "job-" + req.GetOutput().GetName(), State: modelv1.JobState_JOB_STATE_QUEUED, Request: req}}, nil
}

func (fakeQuantizer) WatchJob(req *quantizerv1.WatchJobRequest, s grpc.ServerStreamingServer[quantizerv1.WatchJobResponse]) error {
	id := req.GetJobId()
	snaps := []*quantizerv1.Job{
		{JobId: id, State: modelv1.JobState_JOB_STATE_QUEUED},
		{JobId: id, State: modelv1.JobState_JOB_STATE_RUNNING, Progress: &modelv1.Progress{Phase: "quantize", Done: 1, Total: 2, Fraction: 0.5}},
	}
	if id == "job-fail" {
		snaps = append(snaps, &quantizerv1.Job{JobId: id, State: modelv1.JobState_JOB_STATE_FAILED, Error: &status.Status{Code: int32(codes.InvalidArgument), Message: "not a BitNet checkpoint"}})
	} else {
		snaps = append(snaps, &quantizerv1.Job{JobId: id, State: modelv1.JobState_JOB_STATE_SUCCEEDED, Result: &modelv1.ModelRef{Name: "out", Version: 2}})
	}
	for _, j := range snaps {
		if err := s.Send(&quantizerv1.WatchJobResponse{Job: j}); err != nil {
			return err
		}
	}
	return nil
}

func TestQuantizerWatch(t *testing.T) {
	c := startServer(t, func(g grpc.ServiceRegistrar) { quantizerv1.RegisterQuantizerServiceServer(g, fakeQuantizer{}) })
	ctx := context.Background()
	for _, tt := range []struct {
		name     string
		wantCode codes.Code
		wantRef  string
	}{
		{"out", codes.OK, "out@2"},
		{"fail", codes.InvalidArgument, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := &quantizerv1.CreateJobRequest{Source: &quantizerv1.Source{Source: &quantizerv1.Source_Model{Model: "src@1"}}, Output: &quantizerv1.Output{Name: tt.name}}
			job, err := c.Quantizer().CreateJob(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if job.GetRequest().GetRequestId() == "" {
				t.Error("got no request ID, want one set by the SDK")
			}
			var states []string
			final, err := c.Quantizer().Watch(ctx, job.GetJobId(), func(j *quantizerv1.Job) { states = append(states, j.GetState().String()) })
			if grpcstatus.Code(err) != tt.wantCode || final.GetResult().Text() != tt.wantRef || len(states) != 3 {
				t.Errorf("got %v, %q, states %v, want code %v, %q, 3 states", err, final.GetResult().Text(), states, tt.wantCode, tt.wantRef)
			}
		})
	}
}
