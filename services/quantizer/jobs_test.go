package quantizer

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
)

// pushed returns an env with a master checkpoint stored as "tiny@1".
func pushed(t *testing.T, opts ...Option) (*testEnv, string) {
	t.Helper()
	e := newEnv(t, opts...)
	dir := filepath.Join(t.TempDir(), "ckpt")
	writeCheckpoint(t, dir, false, 3)
	e.push(t, "tiny", dir, registry.FormatHFSafetensors)
	return e, dir
}

// waitState waits until a job is in state s.
func waitState(t *testing.T, q *Quantizer, id string, s jobs.State) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stop := errors.New("reached")
	err := q.Watch(ctx, id, func(j Job) error {
		if j.State == s {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("job %s never reached %v: %v", id, s, err)
	}
}

func TestCreateBadInput(t *testing.T) {
	e, dir := pushed(t)
	ctx := context.Background()
	// Blobs of a directory without config.json.
	noCfg := e.push(t, "nocfg", dir, registry.FormatHFSafetensors)
	var files []SourceFile
	for _, f := range noCfg.Files {
		if f.Path != "config.json" {
			files = append(files, SourceFile{Path: f.Path, Digest: f.Digest})
		}
	}
	missing := registry.Digest("sha256:" + strings.Repeat("ab", 32))
	for _, tc := range []struct {
		name string
		req  Request
		want error
		msg  string
	}{
		{"no source", Request{}, jobs.ErrInvalid, "exactly one"},
		{"two sources", Request{Model: "tiny", Path: dir}, jobs.ErrInvalid, "exactly one"},
		{"unknown target", Request{Model: "tiny", Target: registry.QuantF16}, jobs.ErrInvalid, "target"},
		{"unknown model", Request{Model: "nope"}, registry.ErrNotFound, "nope"},
		{"bad ref", Request{Model: "Bad Name"}, registry.ErrInvalid, "source model"},
		{"missing config", Request{Files: files}, jobs.ErrInvalid, "missing config.json"},
		{"missing blob", Request{Files: []SourceFile{{Path: "config.json", Digest: missing}}}, registry.ErrNotFound, "config.json"},
		{"bad digest", Request{Files: []SourceFile{{Path: "config.json", Digest: "sha256:xyz"}}}, registry.ErrInvalid, "digest"},
		{"path traversal", Request{Files: []SourceFile{{Path: "../config.json", Digest: missing}}}, registry.ErrInvalid, ".."},
		{"gguf without gguf", Request{Files: files, FilesFormat: registry.FormatGGUF}, jobs.ErrInvalid, "0 .gguf files"},
		{"local dir without config", Request{Path: t.TempDir()}, jobs.ErrInvalid, "config.json"},
		{"local missing", Request{Path: filepath.Join(dir, "nope")}, jobs.ErrInvalid, "nope"},
		{"bad output name", Request{Model: "tiny", Output: Output{Name: "../x"}}, registry.ErrInvalid, "output name"},
		{"text and blob", Request{Model: "tiny", Calibration: &Calibration{Text: "a", TextDigest: missing}}, jobs.ErrInvalid, "both"},
		{"text too long", Request{Model: "tiny", Calibration: &Calibration{Text: strings.Repeat("a", MaxCalibrationText+1)}}, jobs.ErrInvalid, "at most"},
		{"context 1", Request{Model: "tiny", Calibration: &Calibration{ContextLength: 1}}, jobs.ErrInvalid, "context length"},
		{"missing text blob", Request{Model: "tiny", Calibration: &Calibration{TextDigest: missing}}, registry.ErrNotFound, "calibration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.q.Create(ctx, tc.req)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %v, want %v mentioning %q", err, tc.want, tc.msg)
			}
		})
	}
	if list, _, _ := e.q.List(ctx, ListOptions{}); len(list) != 0 {
		t.Errorf("%d jobs after bad requests, want 0", len(list))
	}
}

func TestCancel(t *testing.T) {
	e, _ := pushed(t)
	ctx := context.Background()
	e.src.close() // the first job blocks in its fetching phase
	run, err := e.q.Create(ctx, Request{Model: "tiny", Calibration: smallCalib()})
	if err != nil {
		t.Fatal(err)
	}
	queued, err := e.q.Create(ctx, Request{Model: "tiny", Calibration: smallCalib()})
	if err != nil {
		t.Fatal(err)
	}
	<-e.src.hits
	got, err := e.q.Get(ctx, run.ID)
	if err != nil || got.State != jobs.StateRunning || got.Progress.Phase != PhaseFetching || got.StartTime.IsZero() {
		t.Fatalf("running job: %+v, %v; want running in phase fetching", got.Progress, err)
	}
	// A queued job is cancelled at once.
	c, err := e.q.Cancel(ctx, queued.ID)
	if err != nil || c.State != jobs.StateCancelled || !errors.Is(c.Err, context.Canceled) || c.EndTime.IsZero() {
		t.Fatalf("cancel queued: state %v err %v (%v), want cancelled", c.State, c.Err, err)
	}
	// A running one goes through CANCELLING.
	c, err = e.q.Cancel(ctx, run.ID)
	if err != nil || (c.State != jobs.StateCancelling && c.State != jobs.StateCancelled) {
		t.Fatalf("cancel running: state %v (%v), want cancelling", c.State, err)
	}
	j := wait(t, e.q, run.ID)
	if j.State != jobs.StateCancelled || code(j.Err).String() != "Canceled" || j.Result != nil {
		t.Errorf("after cancel: state %v err %v result %v, want cancelled", j.State, j.Err, j.Result)
	}
	// Cancelling a finished job changes nothing; unknown jobs are not found.
	if again, err := e.q.Cancel(ctx, run.ID); err != nil || again.State != jobs.StateCancelled {
		t.Errorf("second cancel: %v %v, want cancelled, nil", again.State, err)
	}
	if _, err := e.q.Cancel(ctx, "qj-nope"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("cancel unknown: %v, want jobs.ErrNotFound", err)
	}
	// The worker is free again.
	e.src.open()
	next, err := e.q.Create(ctx, Request{Model: "tiny", Calibration: &Calibration{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	if j := wait(t, e.q, next.ID); j.State != jobs.StateSucceeded {
		t.Errorf("job after cancels: %v (%v), want succeeded", j.State, j.Err)
	}
	// The output defaults to the source's model: the source and one result.
	if vs, _, _ := e.store.ListVersions(ctx, "tiny", registry.ListOptions{}); len(vs) != 2 {
		t.Errorf("tiny has %d versions, want 2 (cancelled jobs store nothing)", len(vs))
	}
}

func TestQueueFullIdempotencyAndList(t *testing.T) {
	e, _ := pushed(t, WithQueueSize(1))
	ctx := context.Background()
	e.src.close()
	first, err := e.q.Create(ctx, Request{Model: "tiny", RequestID: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	<-e.src.hits // first is running; the queue is empty again
	second, err := e.q.Create(ctx, Request{Model: "tiny", RequestID: "k2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.q.Create(ctx, Request{Model: "tiny"}); !errors.Is(err, jobs.ErrQueueFull) || code(err).String() != "ResourceExhausted" {
		t.Errorf("third job: %v, want jobs.ErrQueueFull", err)
	}
	if again, err := e.q.Create(ctx, Request{Model: "nope", RequestID: "k1"}); err != nil || again.ID != first.ID {
		t.Errorf("repeated request id: job %q (%v), want %q", again.ID, err, first.ID)
	}
	list, next, err := e.q.List(ctx, ListOptions{PageSize: 1})
	if err != nil || len(list) != 1 || list[0].ID != second.ID || next == "" {
		t.Fatalf("page 1: %d jobs, next %q, %v; want the newest and a token", len(list), next, err)
	}
	list, next, err = e.q.List(ctx, ListOptions{PageSize: 1, PageToken: next})
	if err != nil || len(list) != 1 || list[0].ID != first.ID || next != "" {
		t.Fatalf("page 2: %d jobs, next %q, %v; want the oldest and no token", len(list), next, err)
	}
	if list, _, _ := e.q.List(ctx, ListOptions{State: jobs.StateQueued}); len(list) != 1 || list[0].ID != second.ID {
		t.Errorf("queued jobs: %d, want the second only", len(list))
	}
	if _, _, err := e.q.List(ctx, ListOptions{PageToken: "!"}); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("bad token: %v, want jobs.ErrInvalid", err)
	}
	// Cancelling a queued job frees its slot at once.
	if _, err := e.q.Cancel(ctx, second.ID); err != nil {
		t.Fatal(err)
	}
	third, err := e.q.Create(ctx, Request{Model: "tiny"})
	if err != nil {
		t.Fatalf("Create after cancelling the queued job: %v", err)
	}
	// Close cancels the running and the queued job and refuses new ones.
	if err := e.q.Close(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{first.ID, second.ID, third.ID} {
		j, err := e.q.Get(ctx, id)
		if err != nil || j.State != jobs.StateCancelled || (id != second.ID && !errors.Is(j.Err, jobs.ErrClosed)) {
			t.Errorf("job %s after Close: %v %v (%v), want cancelled by close", id, j.State, j.Err, err)
		}
	}
	if _, err := e.q.Create(ctx, Request{Model: "tiny"}); !errors.Is(err, jobs.ErrClosed) {
		t.Errorf("Create after Close: %v, want jobs.ErrClosed", err)
	}
}

func TestWatchProgress(t *testing.T) {
	e, _ := pushed(t)
	ctx := context.Background()
	j, err := e.q.Create(ctx, Request{Model: "tiny", Calibration: smallCalib()})
	if err != nil {
		t.Fatal(err)
	}
	var phases []string
	last := -1.0
	err = e.q.Watch(ctx, j.ID, func(j Job) error {
		if n := len(phases); n == 0 || phases[n-1] != j.Progress.Phase {
			phases = append(phases, j.Progress.Phase)
		}
		if j.Progress.Fraction < last {
			t.Errorf("fraction went back from %g to %g in phase %s", last, j.Progress.Fraction, j.Progress.Phase)
		}
		last = j.Progress.Fraction
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Watchers see the latest state, so quick phases may be skipped; the
	// order never changes and the end is always seen.
	order := []string{PhaseQueued, PhaseFetching, PhaseLoading, PhaseQuantizing, PhaseEvaluating, PhaseUploading, PhaseDone}
	pos := 0
	for _, p := range phases {
		for pos < len(order) && order[pos] != p {
			pos++
		}
		if pos == len(order) {
			t.Fatalf("phases %v out of order, want a subsequence of %v", phases, order)
		}
	}
	if phases[len(phases)-1] != PhaseDone || last != 1 {
		t.Errorf("phases %v ending at fraction %g, want done at 1", phases, last)
	}
	if err := e.q.Watch(ctx, "qj-nope", func(Job) error { return nil }); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("watch unknown: %v, want jobs.ErrNotFound", err)
	}
}

// corruptSource flips the first byte read from every blob (Create only
// opens blobs to see that they exist).
type corruptSource struct{ Source }

type flipReader struct {
	io.ReadCloser
	done bool
}

func (f *flipReader) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	if n > 0 && !f.done {
		p[0] ^= 1
		f.done = true
	}
	return n, err
}

func (c *corruptSource) OpenBlob(ctx context.Context, d registry.Digest) (io.ReadCloser, int64, error) {
	rc, n, err := c.Source.OpenBlob(ctx, d)
	if err != nil {
		return rc, n, err
	}
	return &flipReader{ReadCloser: rc}, n, nil
}

func TestFilesSource(t *testing.T) {
	e, _ := pushed(t)
	ctx := context.Background()
	v, err := e.store.Resolve(ctx, "tiny")
	if err != nil {
		t.Fatal(err)
	}
	var files []SourceFile
	for _, f := range v.Files {
		files = append(files, SourceFile{Path: f.Path, Digest: f.Digest})
	}
	j, err := e.q.Create(ctx, Request{Files: files, Calibration: &Calibration{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	if j.Request.FilesFormat != registry.FormatHFSafetensors || j.Request.Output.Name != DefaultOutputName {
		t.Errorf("request format %q output %q, want the inferred %s into %s", j.Request.FilesFormat, j.Request.Output.Name, registry.FormatHFSafetensors, DefaultOutputName)
	}
	if j = wait(t, e.q, j.ID); j.State != jobs.StateSucceeded || j.Report.SourceSizeBytes != uint64(v.SizeBytes) {
		t.Fatalf("state %v (%v), source size %d: want succeeded with %d source bytes", j.State, j.Err, j.Report.SourceSizeBytes, v.SizeBytes)
	}

	// Bytes that do not hash to their digest fail the job.
	b := registry.NewBackend(e.store)
	cs := &corruptSource{b}
	q, err := New(cs, b, WithWorkDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	j, err = q.Create(ctx, Request{Files: files})
	if err != nil {
		t.Fatal(err)
	}
	if j = wait(t, q, j.ID); j.State != jobs.StateFailed || code(j.Err).String() != "DataLoss" {
		t.Errorf("corrupt blob: state %v err %v, want failed with DataLoss", j.State, j.Err)
	}
}
