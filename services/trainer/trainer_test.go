package trainer

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	trainerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/trainer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

func TestScratchThenFineTune(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	req := e.scratchRequest(t, 6, "tiny")
	resp, err := e.client.CreateJob(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	j := e.watch(t, resp.GetJob().GetJobId(), nil)
	mustSucceed(t, j)
	m := j.GetMetrics()
	if m.GetStep() != 6 || m.GetTotalSteps() != 6 || !(m.GetLoss() > 0) || !(m.GetValLoss() > 0) || m.GetTokens() != 6*4*32 {
		t.Errorf("metrics: got %v, want 6/6 steps, positive losses, %d tokens", m, 6*4*32)
	}
	if got := len(j.GetValidation()); got != 3 { // steps 2, 4, 6
		t.Errorf("validation points: got %d, want 3", got)
	}
	if got := len(j.GetCheckpoints()); got != 2 { // steps 3, 6
		t.Errorf("checkpoints: got %d, want 2", got)
	}
	if got := lossSteps(j); !slices.Equal(got, []uint32{1, 2, 3, 4, 5, 6}) {
		t.Errorf("loss curve steps: got %v, want 1..6", got)
	}
	wantLog(t, j, "started: 6 steps", "step 2/6: validation loss", "step 3: checkpoint written", "succeeded: registered tiny@1")
	wantData := sha256Hex(readFile(t, "testdata/opticks-8k.txt"))
	if j.GetDatasetSha256() != wantData {
		t.Errorf("dataset sha256: got %s, want %s", j.GetDatasetSha256(), wantData)
	}
	if len(j.GetResults()) != 1 || j.GetResults()[0].GetName() != "tiny" || j.GetResults()[0].GetVersion() != 1 {
		t.Fatalf("results: got %v, want tiny@1", j.GetResults())
	}
	v, err := e.store.Resolve(ctx, "tiny@1")
	if err != nil {
		t.Fatal(err)
	}
	lin := v.Metadata.Lineage
	if lin.Source != registry.SourceTrainer || lin.JobID != j.GetJobId() || lin.Parent != nil || lin.DatasetDigest.Hex() != wantData || lin.ConfigJSON == "" {
		t.Errorf("lineage: got %+v", lin)
	}
	for _, k := range []string{"train_loss", "val_loss", "val_perplexity"} {
		if !(lin.Metrics[k] > 0) {
			t.Errorf("lineage metric %s: got %v, want > 0", k, lin.Metrics[k])
		}
	}
	if v.Metadata.Format != registry.FormatHFSafetensors || v.Metadata.Labels["test"] != "yes" {
		t.Errorf("metadata: got format %q labels %v", v.Metadata.Format, v.Metadata.Labels)
	}
	dir := e.materialise(t, v)
	w, tok, err := model.LoadWeights(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tok == nil {
		t.Fatal("version has no tokenizer")
	}
	mdl, err := model.New(w, tok)
	if err != nil {
		t.Fatal(err)
	}
	_ = mdl

	// Fine-tune the result: the parent's tokenizer, lineage back to tiny@1.
	ft := e.scratchRequest(t, 3, "")
	ft.Model = &trainerv1.ModelSpec{Init: &trainerv1.ModelSpec_Parent{Parent: "tiny"}}
	resp, err = e.client.CreateJob(ctx, ft)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetJob().GetRequest().GetModel().GetParent(); got != "tiny@1" {
		t.Errorf("pinned parent: got %q, want tiny@1", got)
	}
	j2 := e.watch(t, resp.GetJob().GetJobId(), nil)
	mustSucceed(t, j2)
	v2, err := e.store.Resolve(ctx, "tiny@2")
	if err != nil {
		t.Fatal(err)
	}
	if p := v2.Metadata.Lineage.Parent; p == nil || p.Name != "tiny" || p.Version != 1 {
		t.Errorf("fine-tune parent: got %v, want tiny@1", p)
	}
	// The scratch run learned something: below a uniform guess (ln 600 = 6.4).
	if l := j.GetMetrics().GetLoss(); !(l < 6.4) {
		t.Errorf("scratch final loss: got %v, want < 6.4", l)
	}

	list, err := e.client.ListJobs(ctx, &trainerv1.ListJobsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetJobs()) != 2 || list.GetJobs()[0].GetJobId() != j2.GetJobId() {
		t.Errorf("list: got %d jobs, want 2 newest first", len(list.GetJobs()))
	}
	for _, lj := range list.GetJobs() {
		if len(lj.GetLossCurve())+len(lj.GetLog()) != 0 || len(lj.GetValidation()) == 0 {
			t.Errorf("list: job %s has %d loss points and %d log lines, want them left out (validation kept)", lj.GetJobId(), len(lj.GetLossCurve()), len(lj.GetLog()))
		}
	}
}

// lossSteps returns the steps of a job's loss curve.
func lossSteps(j *trainerv1.Job) []uint32 {
	var out []uint32
	for _, p := range j.GetLossCurve() {
		out = append(out, p.GetStep())
	}
	return out
}

// wantLog checks that each of want starts a line of j's log, in order.
func wantLog(t *testing.T, j *trainerv1.Job, want ...string) {
	t.Helper()
	var lines []string
	for _, l := range j.GetLog() {
		lines = append(lines, l.GetMessage())
		if l.GetTime() == nil {
			t.Errorf("log line %q has no time", l.GetMessage())
		}
	}
	i := 0
	for _, l := range lines {
		if i < len(want) && strings.HasPrefix(l, want[i]) {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("log: got %q, want lines starting %q in order", lines, want)
	}
}

func TestCancel(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	resp, err := e.client.CreateJob(ctx, e.scratchRequest(t, 100000, "cancelled"))
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetJob().GetJobId()
	e.watch(t, id, func(j *trainerv1.Job) bool { return j.GetMetrics().GetStep() >= 1 })
	c, err := e.client.CancelJob(ctx, &trainerv1.CancelJobRequest{JobId: id})
	if err != nil {
		t.Fatal(err)
	}
	if s := c.GetJob().GetState(); s != modelv1.JobState_JOB_STATE_CANCELLING && s != modelv1.JobState_JOB_STATE_CANCELLED {
		t.Errorf("after cancel: got %v, want CANCELLING or CANCELLED", s)
	}
	j := e.watch(t, id, nil)
	if j.GetState() != modelv1.JobState_JOB_STATE_CANCELLED || j.GetError().GetCode() != 1 { // codes.Canceled
		t.Errorf("got state %v error %v, want CANCELLED with code CANCELLED", j.GetState(), j.GetError())
	}
	if _, err := e.store.Resolve(ctx, "cancelled"); err == nil {
		t.Error("a cancelled job wrote a version")
	}
	// Cancelling again returns the job as it is.
	c, err = e.client.CancelJob(ctx, &trainerv1.CancelJobRequest{JobId: id})
	if err != nil || c.GetJob().GetState() != modelv1.JobState_JOB_STATE_CANCELLED {
		t.Errorf("second cancel: got %v, %v", c.GetJob().GetState(), err)
	}
}

// TestRestartResume closes the service in the middle of a job, reopens it
// on the same work directory and checks that the job finishes with the
// weights of an uninterrupted run.
func TestRestartResume(t *testing.T) {
	const steps = 40
	e := newEnv(t)
	ctx := context.Background()
	resp, err := e.client.CreateJob(ctx, e.scratchRequest(t, steps, "straight"))
	if err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, e.watch(t, resp.GetJob().GetJobId(), nil))

	req := e.scratchRequest(t, steps, "resumed")
	req.Threads = 1 // results do not depend on the thread count
	resp, err = e.client.CreateJob(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetJob().GetJobId()
	e.watch(t, id, func(j *trainerv1.Job) bool { return j.GetMetrics().GetStep() >= 4 })
	e.stopSrv()
	stopped, err := e.tr.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if stopped.State != jobs.StateQueued || stopped.Metrics.Step >= steps {
		t.Fatalf("after close: got state %v at step %d, want queued before step %d", stopped.State, stopped.Metrics.Step, steps)
	}
	rec := &recordingRunner{}
	e.start(t, WithRunner(rec))
	got, err := e.client.GetJob(ctx, &trainerv1.GetJobRequest{JobId: id})
	if err != nil {
		t.Fatal(err)
	}
	if s := got.GetJob().GetState(); s != modelv1.JobState_JOB_STATE_QUEUED && s != modelv1.JobState_JOB_STATE_RUNNING {
		t.Fatalf("after restart: got state %v, want queued or running", s)
	}
	j := e.watch(t, id, nil)
	mustSucceed(t, j)
	if len(j.GetValidation()) == 0 || j.GetMetrics().GetStep() != steps {
		t.Errorf("resumed job metrics: got %v", j.GetMetrics())
	}
	if st := lossSteps(j); len(st) == 0 || st[len(st)-1] != steps || !slices.IsSorted(st) {
		t.Errorf("resumed loss curve steps: got %v, want increasing to %d", st, steps)
	}
	wantLog(t, j, "started: 40 steps", "stopped by a shutdown", "resumed from the checkpoint at step", "succeeded")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	// Close checkpoints at the step it stops at, or (when it stops during a
	// validation) the periodic checkpoint of step 3 is the latest.
	if rec.resumedAt < 3 || rec.firstStep != rec.resumedAt+1 {
		t.Errorf("after restart: resumed at step %d, first step %d; want a resume from step >= 3", rec.resumedAt, rec.firstStep)
	}
	a, err := e.store.Resolve(ctx, "straight@1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.store.Resolve(ctx, "resumed@1")
	if err != nil {
		t.Fatal(err)
	}
	if wa, wb := fileOf(a, weightsFile), fileOf(b, weightsFile); wa == nil || wb == nil || wa.Digest != wb.Digest {
		t.Errorf("weights: got %v after a restart, want %v as uninterrupted", wb, wa)
	}
}

// recordingRunner is a LocalRunner that records where a run resumed.
type recordingRunner struct {
	LocalRunner
	mu                   sync.Mutex
	resumedAt, firstStep int
}

func (r *recordingRunner) Run(ctx context.Context, s RunSpec, event func(Event)) (RunResult, error) {
	res, err := r.LocalRunner.Run(ctx, s, func(ev Event) {
		r.mu.Lock()
		if r.firstStep == 0 {
			r.firstStep = ev.Metrics.Step
		}
		r.mu.Unlock()
		event(ev)
	})
	r.mu.Lock()
	r.resumedAt = res.ResumedAt
	r.mu.Unlock()
	return res, err
}
