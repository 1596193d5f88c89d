package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
)

// startMesh serves a real registry plus fake quantizer and inference
// services on one loopback gRPC server, like `bitnet up` does.
func startMesh(t *testing.T) (string, *registry.Store) {
	t.Helper()
	store, err := registry.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	registry.NewServer(store).Register(gs)
	quantizerv1.RegisterQuantizerServiceServer(gs, &fakeQuantizer{store: store, jobs: map[string]*quantizerv1.Job{}})
	inferencev1.RegisterInferenceServiceServer(gs, fakeInference{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(lis)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-done
		store.Close()
	})
	return lis.Addr().String(), store
}

// runCLI runs the bitnet command line and returns stdout and stderr.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// fakeQuantizer "quantizes" by storing the source's first file as the
// result's GGUF blob, so that the CLI sees a real registry version.
type fakeQuantizer struct {
	quantizerv1.UnimplementedQuantizerServiceServer
	store *registry.Store
	mu    sync.Mutex
	jobs  map[string]*quantizerv1.Job
}

func (q *fakeQuantizer) CreateJob(ctx context.Context, req *quantizerv1.CreateJobRequest) (*quantizerv1.CreateJobResponse, error) {
	var first registry.BlobRef
	name := req.GetOutput().GetName()
	var parent *registry.Ref
	switch src := req.GetSource().GetSource().(type) {
	case *quantizerv1.Source_Model:
		v, err := q.store.Resolve(ctx, src.Model)
		if err != nil {
			return nil, status.Error(codes.NotFound, err.Error())
		}
		first, parent = v.Files[0], &v.Ref
		if name == "" {
			name = v.Ref.Name
		}
	case *quantizerv1.Source_Files:
		d, err := registry.ParseDigest(src.Files.GetFiles()[0].GetSha256())
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		first = registry.BlobRef{Digest: d}
		if name == "" {
			name = "quantized"
		}
	default:
		return nil, status.Error(codes.InvalidArgument, "no source")
	}
	q.mu.Lock()
	id := fmt.Sprintf("job-%d", len(q.jobs)+1)
	q.mu.Unlock()
	qt := registry.QuantTQ20 // the version records the target the CLI asked for
	switch req.GetTarget() {
	case modelv1.QuantType_QUANT_TYPE_TQ1_0:
		qt = registry.QuantTQ10
	case modelv1.QuantType_QUANT_TYPE_I2_S:
		qt = registry.QuantI2S
	}
	v, err := q.store.CreateVersion(ctx, name, registry.VersionSpec{
		CreateModel: true,
		Aliases:     req.GetOutput().GetAliases(),
		Files:       []registry.BlobRef{{Path: "model.gguf", Digest: first.Digest}},
		Metadata: registry.Metadata{Format: registry.FormatGGUF, QuantType: qt,
			Lineage: registry.Lineage{Source: registry.SourceQuantizer, JobID: id, Parent: parent}},
	})
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	job := &quantizerv1.Job{JobId: id, State: modelv1.JobState_JOB_STATE_QUEUED, Request: req,
		Result: &modelv1.ModelRef{Name: v.Ref.Name, Version: v.Ref.Version}}
	q.mu.Lock()
	q.jobs[id] = job
	q.mu.Unlock()
	return &quantizerv1.CreateJobResponse{Job: job}, nil
}

func (q *fakeQuantizer) WatchJob(req *quantizerv1.WatchJobRequest, s grpc.ServerStreamingServer[quantizerv1.WatchJobResponse]) error {
	q.mu.Lock()
	job, ok := q.jobs[req.GetJobId()]
	q.mu.Unlock()
	if !ok {
		return status.Errorf(codes.NotFound, "job %s", req.GetJobId())
	}
	id, result := job.GetJobId(), job.GetResult()
	for _, j := range []*quantizerv1.Job{
		{JobId: id, State: modelv1.JobState_JOB_STATE_RUNNING, Progress: &modelv1.Progress{Phase: "quantize", Done: 1, Total: 4, Unit: "tensors"}},
		{JobId: id, State: modelv1.JobState_JOB_STATE_RUNNING, Progress: &modelv1.Progress{Phase: "quantize", Done: 4, Total: 4, Unit: "tensors"}},
		{JobId: id, State: modelv1.JobState_JOB_STATE_SUCCEEDED, Result: result,
			Report: &quantizerv1.Report{Linears: make([]*quantizerv1.LinearReport, 4), SourceSizeBytes: 4096, ResultSizeBytes: 1024}},
	} {
		if err := s.Send(&quantizerv1.WatchJobResponse{Job: j}); err != nil {
			return err
		}
	}
	return nil
}

// fakeInference echoes the prompt's words and reports two nodes.
type fakeInference struct {
	inferencev1.UnimplementedInferenceServiceServer
}

func (fakeInference) Generate(req *inferencev1.GenerateRequest, s grpc.ServerStreamingServer[inferencev1.GenerateResponse]) error {
	if req.GetModel() == "missing" {
		return status.Error(codes.NotFound, "model \"missing\" not found")
	}
	for _, r := range req.GetRequire() {
		if r == "sve" {
			return status.Error(codes.FailedPrecondition, "no node has sve")
		}
	}
	text := req.GetPrompt()
	if len(req.GetMessages()) > 0 {
		text = "chat:" + req.GetMessages()[len(req.GetMessages())-1].GetContent()
	}
	if text == "params" { // what the client sent, "-" for unset
		opt := func(set bool, v any) string {
			if !set {
				return "-"
			}
			return fmt.Sprint(v)
		}
		text = fmt.Sprintf("temperature=%s top_k=%d top_p=%s min_p=%v penalty=%s seed=%s max=%d require=%s prefer=%s echo=%v",
			opt(req.Temperature != nil, req.GetTemperature()), req.GetTopK(), opt(req.TopP != nil, req.GetTopP()), req.GetMinP(),
			opt(req.RepetitionPenalty != nil, req.GetRepetitionPenalty()), opt(req.Seed != nil, req.GetSeed()), req.GetMaxTokens(),
			strings.Join(req.GetRequire(), "+"), req.GetPreferKernel(), req.GetEcho())
	}
	words := strings.Fields(text)
	for _, w := range words {
		if err := s.Send(&inferencev1.GenerateResponse{Text: w + " "}); err != nil {
			return err
		}
	}
	return s.Send(&inferencev1.GenerateResponse{FinishReason: inferencev1.FinishReason_FINISH_REASON_STOP,
		Usage: &modelv1.Usage{CompletionTokens: uint32(len(words))}, Node: "node-a", Kernel: "avx2",
		Model: &modelv1.ModelRef{Name: req.GetModel(), Version: 1}})
}

func (fakeInference) ListNodes(ctx context.Context, req *inferencev1.ListNodesRequest) (*inferencev1.ListNodesResponse, error) {
	nodes := []*inferencev1.Node{
		{Name: "node-a", Address: "10.0.0.1:50052", Healthy: true,
			Hardware: &modelv1.Hardware{Arch: "amd64", Kernel: "avx2", Features: []string{"avx2"}, LogicalCores: 8, MemoryBytes: 16 << 30},
			Load:     &inferencev1.NodeLoad{ActiveRequests: 2, QueueDepth: 1, QueueCapacity: 64, TokensPerSecond: 41.5},
			Loaded:   []*inferencev1.LoadedModel{{Model: &modelv1.ModelRef{Name: "tiny", Version: 1}, Family: "bitnet"}}},
		{Name: "node-b", Address: "10.0.0.2:50052", Healthy: true,
			Hardware: &modelv1.Hardware{Arch: "amd64", Kernel: "avx512", Features: []string{"avx2", "avx512f"}, LogicalCores: 16}},
	}
	var out []*inferencev1.Node
	for _, n := range nodes {
		ok := true
		for _, r := range req.GetRequire() {
			if !strings.Contains(strings.Join(n.GetHardware().GetFeatures(), ","), r) {
				ok = false
			}
		}
		if ok {
			out = append(out, n)
		}
	}
	return &inferencev1.ListNodesResponse{Nodes: out}, nil
}

func (fakeInference) ListModels(ctx context.Context, req *inferencev1.ListModelsRequest) (*inferencev1.ListModelsResponse, error) {
	return &inferencev1.ListModelsResponse{Models: []*inferencev1.ServableModel{{Name: "tiny",
		Loaded: []*inferencev1.LoadedModel{{Model: &modelv1.ModelRef{Name: "tiny", Version: 1}, Node: "node-a"}}}}}, nil
}
