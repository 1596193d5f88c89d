package trainer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// Layout of the work directory.
const (
	jobsDir    = "jobs"     // WORKDIR/jobs/ID/
	jobFile    = "job.json" // the persisted job
	recordVers = 1
)

// record is a job as persisted; the error is kept as its message and kind.
type record struct {
	Format  int    `json:"format"`
	Seq     uint64 `json:"seq"`
	Job     Job    `json:"job"`
	ErrKind string `json:"err_kind,omitempty"`
	ErrMsg  string `json:"err_msg,omitempty"`
}

// errorKinds are the error kinds a persisted job keeps (for status codes).
func errorKinds() []struct {
	name string
	err  error
} {
	return []struct {
		name string
		err  error
	}{
		{"invalid", jobs.ErrInvalid}, {"precondition", ErrPrecondition}, {"not_found", jobs.ErrNotFound},
		{"closed", jobs.ErrClosed}, {"canceled", context.Canceled},
		{"registry_not_found", registry.ErrNotFound}, {"registry_invalid", registry.ErrInvalid},
		{"registry_exists", registry.ErrAlreadyExists}, {"digest_mismatch", registry.ErrDigestMismatch},
		{"registry_precondition", registry.ErrFailedPrecondition}, {"too_large", registry.ErrTooLarge},
		{"internal", jobs.ErrInternal}, {"over_budget", model.ErrOverBudget},
	}
}

// restoredError is a persisted job error: its message, wrapping its kind.
type restoredError struct {
	msg  string
	kind error
}

func (e *restoredError) Error() string { return e.msg }
func (e *restoredError) Unwrap() error { return e.kind }

// saveLocked writes j's job.json atomically.
func (t *Trainer) saveLocked(j *job) error {
	r := record{Format: recordVers, Seq: j.seq, Job: j.snapshot()}
	if err := r.Job.Err; err != nil {
		r.ErrMsg = err.Error()
		for _, k := range errorKinds() {
			if errors.Is(err, k.err) {
				r.ErrKind = k.name
				break
			}
		}
	}
	r.Job.Err = nil
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("save job %s: %w", j.snap.ID, err)
	}
	return writeFileAtomic(filepath.Join(j.dir, jobFile), append(b, '\n'))
}

// load takes back the jobs of the work directory: finished ones as they
// are, unfinished ones queued again (a job cancelled while running is
// finished as cancelled).
func (t *Trainer) load() error {
	root := filepath.Join(t.opts.workDir, jobsDir)
	ents, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	var loaded []*job
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, jobFile))
		if errors.Is(err, fs.ErrNotExist) {
			continue // a Create that did not finish
		}
		if err != nil {
			return fmt.Errorf("trainer: %w", err)
		}
		j, err := decodeRecord(b, e.Name())
		if err != nil {
			return fmt.Errorf("trainer: %s: %w", filepath.Join(dir, jobFile), err)
		}
		j.dir = dir
		loaded = append(loaded, j)
	}
	slices.SortFunc(loaded, func(a, b *job) int { return cmp.Compare(a.seq, b.seq) })
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, j := range loaded {
		t.table.Add(j)
		switch j.snap.State {
		case jobs.StateCancelling:
			t.finishLocked(j, jobs.StateCancelled, fmt.Errorf("cancelled by request: %w", context.Canceled))
		case jobs.StateQueued, jobs.StateRunning:
			// Checked again: the job may predate today's limits, or the
			// budget may have shrunk. One that cannot run fails here
			// instead of at a worker (it once crashed the process).
			if err := t.checkModel(j.snap.Request); err != nil {
				t.finishLocked(j, jobs.StateFailed, fmt.Errorf("taken back after a restart: %w", err))
				continue
			}
			j.snap.State = jobs.StateQueued
			t.table.Enqueue(j)
			_ = t.saveLocked(j)
		}
	}
	return nil
}

// decodeRecord parses a job.json of the job with that ID.
func decodeRecord(b []byte, id string) (*job, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("job record: %w", err)
	}
	if r.Format != recordVers || r.Job.ID != id || r.Seq == 0 || r.Job.State < jobs.StateQueued || r.Job.State > jobs.StateCancelled {
		return nil, fmt.Errorf("job record: format %d, id %q, seq %d, state %d: want format %d, id %q, seq > 0, a known state", r.Format, r.Job.ID, r.Seq, r.Job.State, recordVers, id)
	}
	if r.ErrMsg != "" {
		re := &restoredError{msg: r.ErrMsg}
		for _, k := range errorKinds() {
			if k.name == r.ErrKind {
				re.kind = k.err
			}
		}
		r.Job.Err = re
	}
	return &job{snap: r.Job, seq: r.Seq, changed: make(chan struct{})}, nil
}

// writeFileAtomic writes data to a temporary file beside path, syncs it and
// renames it over path.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
