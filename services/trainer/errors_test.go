package trainer

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	trainerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/trainer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
)

func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// A GGUF-only version cannot be fine-tuned.
	gguf := e.put(t, []byte("GGUF not really"))
	if _, err := e.store.CreateVersion(ctx, "packed", registry.VersionSpec{
		Files:       []registry.BlobRef{{Path: "model.gguf", Digest: registry.Digest("sha256:" + gguf)}},
		Metadata:    registry.Metadata{Format: registry.FormatGGUF},
		CreateModel: true,
	}); err != nil {
		t.Fatal(err)
	}
	base := e.scratchRequest(t, 4, "bad")
	missing := sha256Hex([]byte("nothing stored"))
	for _, tc := range []struct {
		name   string
		modify func(r *trainerv1.CreateJobRequest)
		want   codes.Code
	}{
		{"no model", func(r *trainerv1.CreateJobRequest) { r.Model = nil }, codes.InvalidArgument},
		{"no init", func(r *trainerv1.CreateJobRequest) { r.Model.Init = nil }, codes.InvalidArgument},
		{"bad config", func(r *trainerv1.CreateJobRequest) {
			r.Model.Init = &trainerv1.ModelSpec_ConfigJson{ConfigJson: `{"hidden_size": 32}`}
		}, codes.InvalidArgument},
		{"no tokenizer", func(r *trainerv1.CreateJobRequest) { r.Model.TokenizerSha256 = "" }, codes.InvalidArgument},
		{"unknown tokenizer", func(r *trainerv1.CreateJobRequest) { r.Model.TokenizerSha256 = missing }, codes.NotFound},
		{"bad digest", func(r *trainerv1.CreateJobRequest) { r.Dataset.Sha256 = []string{"xyz"} }, codes.InvalidArgument},
		{"unknown data", func(r *trainerv1.CreateJobRequest) { r.Dataset.Sha256 = []string{missing} }, codes.NotFound},
		{"no data", func(r *trainerv1.CreateJobRequest) { r.Dataset.Sha256 = nil }, codes.InvalidArgument},
		{"unknown parent", func(r *trainerv1.CreateJobRequest) {
			r.Model.Init = &trainerv1.ModelSpec_Parent{Parent: "nosuch"}
		}, codes.NotFound},
		{"gguf parent", func(r *trainerv1.CreateJobRequest) {
			r.Model.Init = &trainerv1.ModelSpec_Parent{Parent: "packed@1"}
		}, codes.FailedPrecondition},
		{"zero steps", func(r *trainerv1.CreateJobRequest) { r.Hyperparameters.Steps = 0 }, codes.InvalidArgument},
		{"seq over context", func(r *trainerv1.CreateJobRequest) { r.Hyperparameters.SeqLen = 65 }, codes.InvalidArgument},
		{"bad lr", func(r *trainerv1.CreateJobRequest) { r.Hyperparameters.LearningRate = -1 }, codes.InvalidArgument},
		{"bad warmup", func(r *trainerv1.CreateJobRequest) { r.Hyperparameters.WarmupFraction = 1.5 }, codes.InvalidArgument},
		{"bad decay", func(r *trainerv1.CreateJobRequest) { r.Hyperparameters.WeightDecay = proto.Float64(2) }, codes.InvalidArgument},
		{"bad schedule", func(r *trainerv1.CreateJobRequest) { r.Hyperparameters.Schedule = 99 }, codes.InvalidArgument},
		{"bad val fraction", func(r *trainerv1.CreateJobRequest) { r.Dataset.ValidationFraction = 0.9 }, codes.InvalidArgument},
		{"bad output", func(r *trainerv1.CreateJobRequest) { r.Output.Name = "Bad Name!" }, codes.InvalidArgument},
		{"gguf export", func(r *trainerv1.CreateJobRequest) {
			r.Output.ExportGguf = modelv1.QuantType_QUANT_TYPE_TQ2_0
		}, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := proto.Clone(base).(*trainerv1.CreateJobRequest)
			tc.modify(r)
			_, err := e.client.CreateJob(ctx, r)
			if got := status.Code(err); got != tc.want {
				t.Errorf("got %v (%v), want %v", got, err, tc.want)
			}
		})
	}
	for _, call := range []func() error{
		func() error { _, err := e.client.GetJob(ctx, &trainerv1.GetJobRequest{JobId: "nosuch"}); return err },
		func() error {
			_, err := e.client.CancelJob(ctx, &trainerv1.CancelJobRequest{JobId: "nosuch"})
			return err
		},
		func() error {
			st, err := e.client.WatchJob(ctx, &trainerv1.WatchJobRequest{JobId: "nosuch"})
			if err != nil {
				return err
			}
			_, err = st.Recv()
			return err
		},
	} {
		if got := status.Code(call()); got != codes.NotFound {
			t.Errorf("unknown job: got %v, want NotFound", got)
		}
	}
	if _, err := e.client.ListJobs(ctx, &trainerv1.ListJobsRequest{PageToken: "!"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad page token: got %v, want InvalidArgument", err)
	}
}

// blockingRunner trains nothing: it waits for its context.
type blockingRunner struct{}

func (blockingRunner) Name() string { return "blocking" }

func (blockingRunner) Run(ctx context.Context, _ RunSpec, event func(Event)) (RunResult, error) {
	event(Event{Metrics: Metrics{Step: 1}})
	<-ctx.Done()
	return RunResult{}, ctx.Err()
}

func TestQueueFull(t *testing.T) {
	e := newEnv(t, WithQueueSize(1), WithRunner(blockingRunner{}))
	ctx := context.Background()
	first, err := e.client.CreateJob(ctx, e.scratchRequest(t, 4, "q"))
	if err != nil {
		t.Fatal(err)
	}
	j := e.watch(t, first.GetJob().GetJobId(), func(j *trainerv1.Job) bool { return j.GetMetrics().GetStep() >= 1 })
	if j.GetRunner() != "blocking" {
		t.Errorf("runner: got %q, want blocking", j.GetRunner())
	}
	second, err := e.client.CreateJob(ctx, e.scratchRequest(t, 4, "q"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateJob(ctx, e.scratchRequest(t, 4, "q")); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("third job: got %v, want ResourceExhausted", err)
	}
	// A repeated request ID returns the first job.
	r := e.scratchRequest(t, 4, "q")
	r.RequestId = "once"
	c, err := e.client.CancelJob(ctx, &trainerv1.CancelJobRequest{JobId: second.GetJob().GetJobId()})
	if err != nil || c.GetJob().GetState() != modelv1.JobState_JOB_STATE_CANCELLED {
		t.Fatalf("cancel queued: got %v, %v", c.GetJob().GetState(), err)
	}
	a, err := e.client.CreateJob(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.client.CreateJob(ctx, r)
	if err != nil || b.GetJob().GetJobId() != a.GetJob().GetJobId() {
		t.Errorf("repeated request id: got %v, %v; want job %s", b.GetJob().GetJobId(), err, a.GetJob().GetJobId())
	}
	// Pages of one job, newest first: a, second, first.
	var ids []string
	tok := ""
	for range 4 {
		page, err := e.client.ListJobs(ctx, &trainerv1.ListJobsRequest{PageSize: 1, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range page.GetJobs() {
			ids = append(ids, j.GetJobId())
		}
		if tok = page.GetNextPageToken(); tok == "" {
			break
		}
	}
	want := []string{a.GetJob().GetJobId(), second.GetJob().GetJobId(), first.GetJob().GetJobId()}
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("pages: got %v, want %v", ids, want)
	}
	cancelled, err := e.client.ListJobs(ctx, &trainerv1.ListJobsRequest{State: modelv1.JobState_JOB_STATE_CANCELLED})
	if err != nil || len(cancelled.GetJobs()) != 1 {
		t.Errorf("cancelled jobs: got %d, %v; want 1", len(cancelled.GetJobs()), err)
	}
}
