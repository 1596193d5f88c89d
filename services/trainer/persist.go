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
	"runtime/debug"
	"slices"

	"go.uber.org/zap"

	"github.com/bitnet-mesh/bitnet-mesh/shared/artifact"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// Layout of the work directory.
const (
	jobsDir    = "jobs"     // WORKDIR/jobs/ID/: a job's checkpoints and files
	jobsDB     = "jobs.db"  // WORKDIR/jobs.db: the job records (jobs.Store)
	jobFile    = "job.json" // a job record as earlier versions kept it (taken back once)
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
func errorKinds() []jobs.ErrorKind {
	return append(jobs.SavedKinds(),
		jobs.ErrorKind{Name: "precondition", Err: ErrPrecondition},
		jobs.ErrorKind{Name: "registry_not_found", Err: artifact.ErrNotFound},
		jobs.ErrorKind{Name: "registry_invalid", Err: artifact.ErrInvalid},
		jobs.ErrorKind{Name: "registry_exists", Err: artifact.ErrAlreadyExists},
		jobs.ErrorKind{Name: "digest_mismatch", Err: artifact.ErrDigestMismatch},
		jobs.ErrorKind{Name: "registry_precondition", Err: artifact.ErrFailedPrecondition},
		jobs.ErrorKind{Name: "too_large", Err: artifact.ErrTooLarge},
		jobs.ErrorKind{Name: "over_budget", Err: model.ErrOverBudget},
	)
}

// saveLocked writes j's record in one durable transaction.
func (t *Trainer) saveLocked(j *job) error {
	r := record{Format: recordVers, Seq: j.seq, Job: j.snapshot()}
	if se := jobs.SaveError(r.Job.Err, errorKinds()); se != nil {
		r.ErrKind, r.ErrMsg = se.Kind, se.Message
	}
	r.Job.Err = nil
	return t.store.Put(j.snap.ID, r)
}

// load takes back the jobs of the work directory: finished ones as they
// are, unfinished ones queued again (a job cancelled while running is
// finished as cancelled).
func (t *Trainer) load() error {
	loaded, err := jobs.Load(t.store, t.opts.Log, decodeRecord, func(j *job) uint64 { return j.seq })
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	for _, j := range loaded {
		j.dir = filepath.Join(t.opts.WorkDir, jobsDir, j.snap.ID)
	}
	legacy, err := t.loadLegacy()
	if err != nil {
		return err
	}
	loaded = append(loaded, legacy...)
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
			if err := t.checkSafe(j); err != nil {
				t.finishLocked(j, jobs.StateFailed, fmt.Errorf("taken back after a restart: %w", err))
				continue
			}
			j.snap.State = jobs.StateQueued
			t.table.Enqueue(j)
			_ = t.saveLocked(j)
		}
	}
	t.evictLocked() // the retention passed while the service was down
	return nil
}

// checkSafe is checkModel for a job taken back, with a panic turned into
// an ErrInternal failure: the job is recorded FAILED, never the process.
func (t *Trainer) checkSafe(j *job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			t.opts.Log.Error("training job panicked at restart", zap.String("job", j.snap.ID), zap.Any("panic", p),
				zap.ByteString("stack", debug.Stack()))
			err = fmt.Errorf("job %s stopped on an internal error: %w", j.snap.ID, jobs.ErrInternal)
		}
	}()
	return t.checkModel(j.snap.Request)
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
		r.Job.Err = (&jobs.SavedError{Kind: r.ErrKind, Message: r.ErrMsg}).Restore(errorKinds())
	}
	return &job{snap: r.Job, seq: r.Seq, changed: make(chan struct{})}, nil
}

// loadLegacy takes the job.json records earlier versions kept in the job
// directories into the store, removing the files once stored.
func (t *Trainer) loadLegacy() ([]*job, error) {
	root := filepath.Join(t.opts.WorkDir, jobsDir)
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	var loaded []*job
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		path := filepath.Join(dir, jobFile)
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && t.store.Has(e.Name())) {
			continue // a job of the store, or a Create that did not finish
		}
		if err != nil {
			return nil, fmt.Errorf("trainer: %w", err)
		}
		j, err := decodeRecord(b, e.Name())
		if err != nil {
			return nil, fmt.Errorf("trainer: %s: %w", path, err)
		}
		j.dir = dir
		if err := t.saveLocked(j); err != nil {
			return nil, fmt.Errorf("trainer: %w", err)
		}
		os.Remove(path)
		loaded = append(loaded, j)
	}
	return loaded, nil
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
