package quantizer

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/artifact"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// recordVers is the format of a persisted job record.
const recordVers = 1

// record is a job as persisted (WithJobStore); the error is kept as its
// message and kind.
type record struct {
	Format int              `json:"format"`
	Seq    uint64           `json:"seq"`
	Job    Job              `json:"job"`
	Err    *jobs.SavedError `json:"err,omitempty"`
}

// errorKinds are the error kinds a persisted job keeps (for status codes).
func errorKinds() []jobs.ErrorKind {
	return append(jobs.SavedKinds(),
		jobs.ErrorKind{Name: "checkpoint", Err: ErrCheckpoint},
		jobs.ErrorKind{Name: "over_budget", Err: model.ErrOverBudget},
		jobs.ErrorKind{Name: "registry_not_found", Err: artifact.ErrNotFound},
		jobs.ErrorKind{Name: "registry_invalid", Err: artifact.ErrInvalid},
		jobs.ErrorKind{Name: "registry_exists", Err: artifact.ErrAlreadyExists},
		jobs.ErrorKind{Name: "digest_mismatch", Err: artifact.ErrDigestMismatch},
		jobs.ErrorKind{Name: "registry_precondition", Err: artifact.ErrFailedPrecondition},
		jobs.ErrorKind{Name: "too_large", Err: artifact.ErrTooLarge},
		jobs.ErrorKind{Name: "no_space", Err: artifact.ErrNoSpace},
	)
}

// saveLocked writes j's record in one durable transaction (nothing without
// a store).
func (q *Quantizer) saveLocked(j *job) error {
	if q.store == nil {
		return nil
	}
	r := record{Format: recordVers, Seq: j.seq, Job: j.snapshot(), Err: jobs.SaveError(j.snap.Err, errorKinds())}
	r.Job.Err = nil
	return q.store.Put(j.snap.ID, r)
}

// load takes back the jobs of the store: finished ones as they are,
// unfinished ones queued to run again from the start (a job cancelled
// while running is finished as cancelled).
func (q *Quantizer) load() error {
	loaded, err := jobs.Load(q.store, q.opts.Log, decodeRecord, func(j *job) uint64 { return j.seq })
	if err != nil {
		return fmt.Errorf("quantizer: %w", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, j := range loaded {
		q.table.Add(j)
		switch j.snap.State {
		case jobs.StateCancelling:
			q.finishLocked(j, jobs.StateCancelled, fmt.Errorf("cancelled by request: %w", context.Canceled))
		case jobs.StateQueued, jobs.StateRunning:
			if j.snap.State == jobs.StateRunning {
				q.logLocked(j, "stopped by a restart: queued to run again")
			}
			now := q.opts.Clock().UTC()
			j.snap.State, j.snap.StartTime = jobs.StateQueued, time.Time{}
			j.snap.Progress = Progress{Phase: PhaseQueued, UpdateTime: now}
			j.snap.Report = Report{}
			q.table.Enqueue(j)
			_ = q.saveLocked(j)
		}
	}
	q.evictLocked() // the retention passed while the service was down
	return nil
}

// decodeRecord parses the record of the job with that ID.
func decodeRecord(b []byte, id string) (*job, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("job record: %w", err)
	}
	if r.Format != recordVers || r.Job.ID != id || r.Seq == 0 || !r.Job.State.Valid() {
		return nil, fmt.Errorf("job record: format %d, id %q, seq %d, state %d: want format %d, id %q, seq > 0, a known state",
			r.Format, r.Job.ID, r.Seq, r.Job.State, recordVers, id)
	}
	r.Job.Err = r.Err.Restore(errorKinds())
	return &job{snap: r.Job, seq: r.Seq, changed: make(chan struct{})}, nil
}
