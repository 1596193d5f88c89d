package trainer

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	trainerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/trainer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
)

// configWith is tinyConfig with some keys replaced.
func configWith(edit map[string]any) string {
	var m map[string]any
	if err := json.Unmarshal([]byte(tinyConfig()), &m); err != nil {
		panic(err)
	}
	for k, v := range edit {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// hugeConfig is issue 10's defect 1: a config whose shapes alone need
// petabytes (hidden, intermediate and vocab 16777216).
func hugeConfig() string {
	return configWith(map[string]any{"vocab_size": 1 << 24, "hidden_size": 1 << 24, "intermediate_size": 1 << 24})
}

// wideConfig passes every shape limit (about 8.6 G parameters) but needs
// far more memory to train than the budget the test sets.
func wideConfig() string {
	return configWith(map[string]any{"vocab_size": 65536, "hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 10,
		"num_attention_heads": 64, "num_key_value_heads": 8})
}

// TestHugeConfigRejected is defect 1: a config whose shapes cannot be
// allocated is refused by CreateJob (it used to be accepted, and the worker
// then panicked with "makeslice: len out of range", killing the process).
func TestHugeConfigRejected(t *testing.T) {
	e := newEnv(t, WithMemoryBudget(1<<30))
	ctx := context.Background()
	for _, tc := range []struct {
		name, config string
		want         codes.Code
		msg          string
	}{
		{"beyond the shape limits", hugeConfig(), codes.InvalidArgument, "parameters"},
		{"beyond the memory budget", wideConfig(), codes.ResourceExhausted, "budget"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.scratchRequest(t, 4, "huge")
			r.Model.Init = &trainerv1.ModelSpec_ConfigJson{ConfigJson: tc.config}
			_, err := e.client.CreateJob(ctx, r)
			if got := status.Code(err); got != tc.want || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("CreateJob: got %v (%v), want %v naming %q", got, err, tc.want, tc.msg)
			}
		})
	}
	list, err := e.client.ListJobs(ctx, &trainerv1.ListJobsRequest{})
	if err != nil || len(list.GetJobs()) != 0 {
		t.Errorf("ListJobs: got %d jobs, %v; want none saved", len(list.GetJobs()), err)
	}
}

// TestBadSavedJobFailsAtRestart: a job saved before the checks existed (or
// by a newer version with other limits) whose config cannot be trained is
// recorded FAILED when the trainer takes it back; it never runs and never
// crashes the process.
func TestBadSavedJobFailsAtRestart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	req := e.domainRequest(t, 2)
	req.Dataset = Dataset{Text: "some text to train on"}
	j, err := e.tr.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	e.watch(t, j.ID, nil)
	e.stopSrv()
	// Rewrite the saved job as a queued one with the huge config.
	store, err := jobs.OpenStore(filepath.Join(e.workDir, jobsDB))
	if err != nil {
		t.Fatal(err)
	}
	var r record
	err = store.Each(func(id string, b []byte) error {
		if id == j.ID {
			return json.Unmarshal(b, &r)
		}
		return nil
	})
	if err != nil || r.Job.ID != j.ID {
		t.Fatalf("saved job: got %q, %v; want %q", r.Job.ID, err, j.ID)
	}
	r.Job.State, r.Job.Results, r.Job.EndTime = jobs.StateQueued, nil, time.Time{}
	r.Job.Request.Model.ConfigJSON = hugeConfig()
	if err := errors.Join(store.Put(j.ID, r), store.Close()); err != nil {
		t.Fatal(err)
	}
	e.start(t)
	got := e.watch(t, j.ID, nil)
	if got.GetState() != modelv1.JobState_JOB_STATE_FAILED || got.GetError().GetCode() != int32(codes.InvalidArgument) {
		t.Fatalf("restarted bad job: got %v %v, want FAILED with INVALID_ARGUMENT", got.GetState(), got.GetError())
	}
}

// panicRunner panics in Run, as a bug in a runner would.
type panicRunner struct{}

func (panicRunner) Name() string { return "panic" }
func (panicRunner) Run(context.Context, RunSpec, func(Event)) (RunResult, error) {
	panic("runner bug")
}

// TestPanickingJobFails: a job whose runner panics is recorded FAILED
// (INTERNAL) and the trainer keeps serving.
func TestPanickingJobFails(t *testing.T) {
	e := newEnv(t, WithRunner(panicRunner{}))
	ctx := context.Background()
	req := e.domainRequest(t, 2)
	req.Dataset = Dataset{Text: "some text to train on"}
	j, err := e.tr.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	got := e.watch(t, j.ID, nil)
	if got.GetState() != modelv1.JobState_JOB_STATE_FAILED || got.GetError().GetCode() != int32(codes.Internal) ||
		strings.Contains(got.GetError().GetMessage(), "runner bug") {
		t.Fatalf("panicking job: got %v %v, want FAILED with INTERNAL and no panic text", got.GetState(), got.GetError())
	}
	again, err := e.tr.Get(ctx, j.ID)
	if err != nil || again.State != jobs.StateFailed || !errors.Is(again.Err, jobs.ErrInternal) {
		t.Fatalf("Get after the panic: got %v %v, want failed with jobs.ErrInternal", again.State, err)
	}
	if _, err := e.client.ListJobs(ctx, proto.Clone(&trainerv1.ListJobsRequest{}).(*trainerv1.ListJobsRequest)); err != nil {
		t.Fatalf("the trainer stopped serving after a panic: %v", err)
	}
}

// TestFailedJobNoPaths: a job failing on a malformed input reports it
// without this host's work directory.
func TestFailedJobNoPaths(t *testing.T) {
	e := newEnv(t)
	req := e.domainRequest(t, 2)
	req.Dataset = Dataset{Text: "some text to train on"}
	req.Model.TokenizerDigest = registry.Digest("sha256:" + e.put(t, []byte(`{"model": "not a tokenizer"}`)))
	j := e.runDomain(t, req)
	if j.State != jobs.StateFailed || strings.Contains(j.Err.Error(), e.workDir) || !strings.Contains(j.Err.Error(), "tokenizer") {
		t.Fatalf("got %v %v, want a failure naming the tokenizer and not %s", j.State, j.Err, e.workDir)
	}
}
