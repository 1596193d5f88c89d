package trainer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/bitnet-mesh/bitnet-mesh/shared/telemetry"

	"go.uber.org/zap"

	"github.com/bitnet-mesh/bitnet-mesh/shared/artifact"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
)

// Option configures a Trainer.
type Option func(*settings)

type settings struct {
	jobs.Config
	runner Runner
}

// WithWorkers sets how many jobs run at once (default 1: a job uses every
// core already).
func WithWorkers(n int) Option { return func(o *settings) { o.Workers = n } }

// WithQueueSize bounds the queued (not yet running) jobs (default 16); Create
// fails with jobs.ErrQueueFull beyond it.
func WithQueueSize(n int) Option { return func(o *settings) { o.QueueSize = n } }

// WithMaxJobs bounds the finished jobs kept for Get and List (default 1000);
// the oldest finished ones are forgotten (and their directories removed)
// first.
func WithMaxJobs(n int) Option { return func(o *settings) { o.MaxJobs = n } }

// WithWorkDir sets the directory holding the jobs (default
// $TMPDIR/bitnet-trainer). Reopening a Trainer on the same directory takes
// its jobs back and resumes the unfinished ones.
func WithWorkDir(dir string) Option { return func(o *settings) { o.WorkDir = dir } }

// WithRetention forgets finished jobs (their records and directories) once
// they ended longer ago than d; 0 (the default) keeps them until WithMaxJobs
// pushes them out.
func WithRetention(d time.Duration) Option { return func(o *settings) { o.Retention = d } }

// WithRunner sets what executes the training (default LocalRunner).
func WithRunner(r Runner) Option { return func(o *settings) { o.runner = r } }

// WithMemoryBudget bounds the memory one job may need, estimated from its
// model's shapes and batch (train.MemoryBytes): Create refuses a job over
// it with model.ErrOverBudget (RESOURCE_EXHAUSTED), before anything is
// allocated. The default is half the machine's memory; a negative budget
// turns the check off.
func WithMemoryBudget(bytes int64) Option { return func(o *settings) { o.MemoryBudget = bytes } }

// WithLogger logs what clients are not told (a job's panic and stack).
func WithLogger(l *zap.Logger) Option { return func(o *settings) { o.Log = l } }

// WithClock sets the time source (tests).
func WithClock(now func() time.Time) Option { return func(o *settings) { o.Clock = now } }

// Trainer queues and runs training jobs. It is safe for concurrent use.
type Trainer struct {
	src  Source
	sink Sink
	opts settings

	ctx     context.Context // cancelled by Close: stops the workers and their jobs
	stop    context.CancelFunc
	workers *jobs.Workers

	store *jobs.Store // the job records, WORKDIR/jobs.db

	mu     sync.Mutex
	closed bool
	table  *jobs.Table[*job]
}

// job is the mutable state of a job, guarded by Trainer.mu.
type job struct {
	snap    Job
	seq     uint64
	dir     string                  // WORKDIR/jobs/ID
	cancel  context.CancelCauseFunc // set while running
	changed chan struct{}           // closed and replaced on every change
	origin  telemetry.Origin        // the creating request's span (none after a restart)
}

// The jobs.Entry methods, called with Trainer.mu held.
func (j *job) JobID() string  { return j.snap.ID }
func (j *job) JobKey() string { return j.snap.Request.RequestID }
func (j *job) JobSeq() uint64 { return j.seq }
func (j *job) Terminal() bool { return j.snap.State.Terminal() }

// New starts a Trainer reading inputs from src and writing results to sink,
// taking back the jobs persisted in its work directory. Close stops it.
func New(src Source, sink Sink, opts ...Option) (*Trainer, error) {
	o := settings{Config: jobs.DefaultConfig(), runner: LocalRunner{}}
	for _, f := range opts {
		f(&o)
	}
	if src == nil || sink == nil || o.runner == nil {
		return nil, fmt.Errorf("trainer: source, sink and runner are required: %w", jobs.ErrInvalid)
	}
	if err := o.Check("trainer"); err != nil {
		return nil, err
	}
	if o.WorkDir == "" {
		o.WorkDir = filepath.Join(os.TempDir(), "bitnet-trainer")
	}
	if err := os.MkdirAll(filepath.Join(o.WorkDir, jobsDir), 0o755); err != nil {
		return nil, fmt.Errorf("trainer: work dir: %w", err)
	}
	store, err := jobs.OpenStore(filepath.Join(o.WorkDir, jobsDB))
	if err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	t := &Trainer{src: src, sink: sink, opts: o, ctx: ctx, stop: stop, store: store,
		table: jobs.NewTable[*job](jobs.ErrInvalid), workers: jobs.NewWorkers()}
	if err := t.load(); err != nil {
		stop()
		store.Close()
		return nil, err
	}
	t.workers.Start(ctx, o.Workers, t.next)
	t.workers.Signal()
	if o.Retention > 0 {
		t.workers.Every(ctx, jobs.ExpireInterval(o.Retention), func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.evictLocked()
		})
	}
	return t, nil
}

// Close stops the workers; running jobs stop at their next step after a
// checkpoint and, like queued ones, stay queued on disk for the next Trainer
// opened on the work directory.
func (t *Trainer) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	t.stop()
	t.workers.Wait()
	t.mu.Lock() // a Create past its closed check may still save
	defer t.mu.Unlock()
	return t.store.Close()
}

// Create validates req, fills in its defaults and queues it. A request whose
// RequestID matches an earlier job's returns that job instead.
func (t *Trainer) Create(ctx context.Context, req Request) (Job, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return Job{}, errClosed()
	}
	if req.RequestID != "" {
		if j, ok := t.table.ByKey(req.RequestID); ok {
			defer t.mu.Unlock()
			return j.snapshot(), nil
		}
	}
	t.mu.Unlock()
	req, err := t.prepare(ctx, cloneRequest(req))
	if err != nil {
		return Job{}, fmt.Errorf("create job: %w", err)
	}
	id, err := jobs.NewID("tj-")
	if err != nil {
		return Job{}, fmt.Errorf("create job: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return Job{}, errClosed()
	}
	if req.RequestID != "" {
		if j, ok := t.table.ByKey(req.RequestID); ok { // a concurrent twin won
			return j.snapshot(), nil
		}
	}
	if t.table.Queued() >= t.opts.QueueSize {
		return Job{}, fmt.Errorf("create job: %d jobs queued already: %w", t.opts.QueueSize, jobs.ErrQueueFull)
	}
	j := &job{seq: t.table.NextSeq(), dir: filepath.Join(t.opts.WorkDir, jobsDir, id), changed: make(chan struct{}), origin: telemetry.OriginOf(ctx), snap: Job{
		ID: id, State: jobs.StateQueued, Request: req, CreateTime: t.opts.Clock().UTC(), Runner: t.opts.runner.Name(),
		Metrics: Metrics{TotalSteps: req.Hyperparameters.Steps},
	}}
	if err := os.MkdirAll(j.dir, 0o755); err != nil {
		return Job{}, fmt.Errorf("create job: %w", err)
	}
	if err := t.saveLocked(j); err != nil {
		os.RemoveAll(j.dir)
		return Job{}, fmt.Errorf("create job: %w", err)
	}
	t.table.Enqueue(j)
	t.workers.Signal()
	t.table.Add(j)
	t.evictLocked()
	return j.snapshot(), nil
}

// Get returns a job.
func (t *Trainer) Get(ctx context.Context, id string) (Job, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	j, ok := t.table.Get(id)
	if !ok {
		return Job{}, fmt.Errorf("job %q: %w", id, jobs.ErrNotFound)
	}
	return j.snapshot(), nil
}

// List returns a page of jobs, newest first, and the next page's token
// ("" on the last page).
func (t *Trainer) List(ctx context.Context, o ListOptions) ([]Job, string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	page, next, err := t.table.Page(o.PageSize, o.PageToken, func(j *job) bool { return o.State == 0 || j.snap.State == o.State })
	if err != nil {
		return nil, "", fmt.Errorf("list jobs: %w", err)
	}
	out := make([]Job, 0, len(page))
	for _, j := range page {
		out = append(out, j.snapshot())
	}
	return out, next, nil
}

// Cancel asks a job to stop: a queued job is cancelled at once, a running
// one moves to CANCELLING and to CANCELLED when it stops (before its next
// optimiser step). Cancelling a finished job returns it unchanged.
func (t *Trainer) Cancel(ctx context.Context, id string) (Job, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	j, ok := t.table.Get(id)
	if !ok {
		return Job{}, fmt.Errorf("job %q: %w", id, jobs.ErrNotFound)
	}
	switch j.snap.State {
	case jobs.StateQueued:
		t.table.Unqueue(j)
		t.finishLocked(j, jobs.StateCancelled, fmt.Errorf("cancelled while queued: %w", context.Canceled))
	case jobs.StateRunning:
		j.snap.State = jobs.StateCancelling
		j.cancel(fmt.Errorf("cancelled by request: %w", context.Canceled))
		t.notifyLocked(j, true)
	}
	return j.snapshot(), nil
}

// Watch calls fn with the job's current snapshot and then after each change
// (changes that happen while fn runs are coalesced into the latest
// snapshot) until the job is terminal, ctx is done, the Trainer closes
// (errClosed()) or fn returns an error.
func (t *Trainer) Watch(ctx context.Context, id string, fn func(Job) error) error {
	for {
		t.mu.Lock()
		j, ok := t.table.Get(id)
		if !ok {
			t.mu.Unlock()
			return fmt.Errorf("job %q: %w", id, jobs.ErrNotFound)
		}
		snap, changed := j.snapshot(), j.changed
		t.mu.Unlock()
		if err := fn(snap); err != nil {
			return err
		}
		if snap.State.Terminal() {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-t.ctx.Done():
			return fmt.Errorf("watch job %q: %w", id, errClosed())
		}
	}
}

// next takes the oldest queued job for a worker, or returns false when
// there is none or the Trainer is closing.
func (t *Trainer) next() (func(), bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx.Err() != nil {
		return nil, false
	}
	j, ok := t.table.Take(t.workers)
	return func() { t.runJob(j) }, ok
}

func (t *Trainer) runJob(j *job) {
	t.mu.Lock()
	if j.snap.State != jobs.StateQueued {
		// Cancelled between next and here: it must not run after all.
		t.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancelCause(t.ctx)
	defer cancel(nil)
	j.cancel = cancel
	j.snap.State = jobs.StateRunning
	if j.snap.StartTime.IsZero() {
		j.snap.StartTime = t.opts.Clock().UTC()
	}
	if n := len(j.snap.Checkpoints); n > 0 {
		t.logLocked(j, "resumed from the checkpoint at step %d", j.snap.Checkpoints[n-1].Step)
	} else {
		t.logLocked(j, "started: %d steps", j.snap.Request.Hyperparameters.Steps)
	}
	req, id := j.snap.Request, j.snap.ID
	t.notifyLocked(j, true)
	t.mu.Unlock()

	x := &execution{t: t, j: j, id: id, req: req,
		phases: j.origin.StartJob("github.com/bitnet-mesh/bitnet-mesh/services/trainer", "train.job",
			attribute.String("bitnet.job_id", id), attribute.Int("bitnet.steps", req.Hyperparameters.Steps))}
	refs, err := x.runSafe(ctx)
	x.phases.End(err)

	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case err == nil:
		j.snap.Results = refs
		t.finishLocked(j, jobs.StateSucceeded, nil)
		x.cleanup()
	case ctx.Err() != nil && t.ctx.Err() != nil && j.snap.State != jobs.StateCancelling:
		// Close: stay queued on disk; the next Trainer resumes the job.
		j.snap.State, j.cancel = jobs.StateQueued, nil
		t.logLocked(j, "stopped by a shutdown: queued to resume")
		t.notifyLocked(j, true)
	case ctx.Err() != nil:
		t.finishLocked(j, jobs.StateCancelled, context.Cause(ctx))
	default:
		t.finishLocked(j, jobs.StateFailed, redactDir(err, j.dir, "job "+id))
		x.cleanup()
	}
}

// redactDir rewrites err's message with name in place of dir (the job's
// work directory on this host stays out of what clients read), keeping
// what errors.Is sees.
func redactDir(err error, dir, name string) error {
	msg := err.Error()
	if !strings.Contains(msg, dir) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(msg, dir, name), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// runSafe is run, with a panic turned into an jobs.ErrInternal failure: the job
// is recorded FAILED, the stack goes to the log and the process lives on.
func (x *execution) runSafe(ctx context.Context) (refs []artifact.Ref, err error) {
	defer func() {
		if p := recover(); p != nil {
			x.t.opts.Log.Error("training job panicked", zap.String("job", x.id), zap.Any("panic", p),
				zap.ByteString("stack", debug.Stack()))
			refs, err = nil, fmt.Errorf("job %s stopped on an internal error: %w", x.id, jobs.ErrInternal)
		}
	}()
	return x.run(ctx)
}

// update applies fn to a running job's snapshot and wakes its watchers;
// persist also writes job.json.
func (t *Trainer) update(j *job, persist bool, fn func(*Job)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fn(&j.snap)
	t.notifyLocked(j, persist)
}

func (t *Trainer) finishLocked(j *job, s jobs.State, err error) {
	switch {
	case s == jobs.StateSucceeded:
		refs := make([]string, len(j.snap.Results))
		for i, r := range j.snap.Results {
			refs[i] = r.String()
		}
		t.logLocked(j, "succeeded: registered %s", strings.Join(refs, ", "))
	case err != nil:
		t.logLocked(j, "%s: %v", s, err)
	default:
		t.logLocked(j, "%s", s)
	}
	j.snap.State = s
	j.snap.Err = err
	j.snap.EndTime = t.opts.Clock().UTC()
	j.cancel = nil
	t.notifyLocked(j, true)
	t.evictLocked()
}

// logLocked appends a line to j's log (saved with the next notify).
func (t *Trainer) logLocked(j *job, format string, args ...any) {
	j.snap.Log = jobs.AppendLog(j.snap.Log, t.opts.Clock().UTC(), format, args...)
}

// notifyLocked wakes the job's watchers and, when persist, saves it (a
// failed save is not fatal: the job goes on, a restart sees older state).
func (t *Trainer) notifyLocked(j *job, persist bool) {
	if persist {
		_ = t.saveLocked(j)
	}
	close(j.changed)
	j.changed = make(chan struct{})
}

// evictLocked forgets the finished jobs past the retention and the oldest
// finished ones beyond maxJobs, and removes their records and directories.
func (t *Trainer) evictLocked() {
	forget := func(j *job) {
		_ = t.store.Delete(j.snap.ID) // a record left behind is expired again at the next start
		os.RemoveAll(j.dir)
	}
	if r := t.opts.Retention; r > 0 {
		cutoff := t.opts.Clock().Add(-r)
		t.table.Expire(func(j *job) bool { return j.snap.EndTime.Before(cutoff) }, forget)
	}
	t.table.Evict(t.opts.MaxJobs, forget)
}

// snapshot copies the parts of the state that keep changing.
func (j *job) snapshot() Job {
	s := j.snap
	s.Validation = slices.Clone(s.Validation)
	s.LossCurve = slices.Clone(s.LossCurve)
	s.Log = slices.Clone(s.Log)
	s.Checkpoints = slices.Clone(s.Checkpoints)
	s.Results = slices.Clone(s.Results)
	return s
}

// cloneRequest copies the slices and maps of a request the caller owns.
func cloneRequest(r Request) Request {
	r.Dataset.Digests = slices.Clone(r.Dataset.Digests)
	r.Output.Aliases = slices.Clone(r.Output.Aliases)
	if r.Output.Labels != nil {
		l := make(map[string]string, len(r.Output.Labels))
		for k, v := range r.Output.Labels {
			l[k] = v
		}
		r.Output.Labels = l
	}
	return r
}
