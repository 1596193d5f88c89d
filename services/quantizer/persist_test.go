package quantizer

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
)

// TestJobStoreRestart: with a job store, a Quantizer reopened after a
// Close has its finished jobs back as they were (state, result, report,
// log, error kind), and runs the job a Close stopped and the queued one.
func TestJobStoreRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobs.db")
	e, _ := pushed(t, WithJobStore(db))
	ctx := context.Background()
	done, err := e.q.Create(ctx, Request{Model: "tiny", RequestID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	doneJob := wait(t, e.q, done.ID)
	big, err := e.store.PutBlob(ctx, strings.NewReader(strings.Repeat("a", MaxCalibrationText+1)), "")
	if err != nil {
		t.Fatal(err)
	}
	failed, err := e.q.Create(ctx, Request{Model: "tiny", Calibration: &Calibration{TextDigest: big.Digest}})
	if err != nil {
		t.Fatal(err)
	}
	failedJob := wait(t, e.q, failed.ID)
	if doneJob.State != jobs.StateSucceeded || failedJob.State != jobs.StateFailed {
		t.Fatalf("got %v and %v (%v), want succeeded and failed", doneJob.State, failedJob.State, failedJob.Err)
	}
	e.src.close() // hold the next job in its fetch
	running, err := e.q.Create(ctx, Request{Model: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	<-e.src.hits
	queued, err := e.q.Create(ctx, Request{Model: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.q.Close(); err != nil {
		t.Fatal(err)
	}
	e.src.open()

	b := registry.NewBackend(e.store)
	q, err := New(b, b, WithWorkDir(t.TempDir()), WithJobStore(db))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	got, err := q.Get(ctx, done.ID)
	if err != nil || got.State != jobs.StateSucceeded || got.Result == nil || *got.Result != *doneJob.Result ||
		got.Report.PerplexityAfter != doneJob.Report.PerplexityAfter || len(got.Report.Linears) != len(doneJob.Report.Linears) ||
		len(got.Log) != len(doneJob.Log) || !got.EndTime.Equal(doneJob.EndTime) {
		t.Errorf("finished job after reopening: got %+v, %v; want it as it was: %+v", got, err, doneJob)
	}
	if again, err := q.Create(ctx, Request{Model: "tiny", RequestID: "r1"}); err != nil || again.ID != done.ID {
		t.Errorf("repeated request ID after reopening: got job %q, %v; want %q", again.ID, err, done.ID)
	}
	got, err = q.Get(ctx, failed.ID)
	if err != nil || got.State != jobs.StateFailed || got.Err.Error() != failedJob.Err.Error() || code(got.Err) != code(failedJob.Err) {
		t.Errorf("failed job after reopening: got %v %v (%v), %v; want failed with %v (%v)", got.State, got.Err, code(got.Err), err, failedJob.Err, code(failedJob.Err))
	}
	for _, id := range []string{running.ID, queued.ID} {
		j := wait(t, q, id)
		if j.State != jobs.StateSucceeded {
			t.Errorf("job %s stopped by the Close: got %v (%v), want it run again to success", id, j.State, j.Err)
		}
	}
	if j, _ := q.Get(ctx, running.ID); !logContains(j.Log, "stopped by a shutdown") {
		t.Errorf("job stopped while running: log %v, want it to say it was stopped by a shutdown", j.Log)
	}
}

func logContains(log []jobs.LogEntry, s string) bool {
	for _, l := range log {
		if strings.Contains(l.Message, s) {
			return true
		}
	}
	return false
}

// TestRetention: finished jobs older than the retention are forgotten, in
// memory and in the store, running and queued ones never.
func TestRetention(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	db := filepath.Join(t.TempDir(), "jobs.db")
	e, _ := pushed(t, WithJobStore(db), WithRetention(time.Hour), WithClock(clock))
	ctx := context.Background()
	old, err := e.q.Create(ctx, Request{Model: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	wait(t, e.q, old.ID)
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	fresh, err := e.q.Create(ctx, Request{Model: "tiny"}) // evicts on create
	if err != nil {
		t.Fatal(err)
	}
	wait(t, e.q, fresh.ID)
	if _, err := e.q.Get(ctx, old.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("job ended 2 h ago with a 1 h retention: got %v, want NotFound", err)
	}
	if _, err := e.q.Get(ctx, fresh.ID); err != nil {
		t.Errorf("fresh job: %v", err)
	}
	e.q.Close()
	b := registry.NewBackend(e.store)
	q, err := New(b, b, WithWorkDir(t.TempDir()), WithJobStore(db), WithRetention(time.Hour), WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	list, _, err := q.List(ctx, ListOptions{})
	if err != nil || len(list) != 1 || list[0].ID != fresh.ID {
		t.Errorf("after reopening: got %d jobs, %v; want the fresh one only", len(list), err)
	}
	if _, err := New(b, b, WithRetention(-time.Second)); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("negative retention: got %v, want jobs.ErrInvalid", err)
	}
}

// TestUnreadableRecordSkipped: a record that cannot be decoded (a newer
// format, a damaged write) is left out with a logged error, the service
// starts and its other jobs are back; it never crash-loops on its store.
func TestUnreadableRecordSkipped(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobs.db")
	e, _ := pushed(t, WithJobStore(db))
	ctx := context.Background()
	done, err := e.q.Create(ctx, Request{Model: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	wait(t, e.q, done.ID)
	if err := e.q.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := jobs.OpenStore(db)
	if err != nil {
		t.Fatal(err)
	}
	for id, rec := range map[string]any{"qj-newer": map[string]any{"format": 99}, "qj-damaged": "not a record"} {
		if err := s.Put(id, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b := registry.NewBackend(e.store)
	q, err := New(b, b, WithWorkDir(t.TempDir()), WithJobStore(db))
	if err != nil {
		t.Fatalf("got %v, want the quantizer started without the unreadable records", err)
	}
	defer q.Close()
	if got, err := q.Get(ctx, done.ID); err != nil || got.State != jobs.StateSucceeded {
		t.Errorf("readable job: got %+v, %v; want it succeeded", got, err)
	}
	if _, err := q.Get(ctx, "qj-newer"); err == nil {
		t.Error("unreadable record: got a job, want not found")
	}
}
