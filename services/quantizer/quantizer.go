package quantizer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/bitnet-mesh/bitnet-mesh/shared/telemetry"

	"go.uber.org/zap"

	"github.com/bitnet-mesh/bitnet-mesh/shared/artifact"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// Option configures a Quantizer.
type Option func(*options)

type options struct {
	jobs.Config
	calibText string
	storePath string
	i2sBlock  ternary.I2SBlock
}

// WithWorkers sets how many jobs run at once (default 1: a job uses every
// core already).
func WithWorkers(n int) Option { return func(o *options) { o.Workers = n } }

// WithQueueSize bounds the queued (not yet running) jobs (default 16); Create
// fails with jobs.ErrQueueFull beyond it.
func WithQueueSize(n int) Option { return func(o *options) { o.QueueSize = n } }

// WithMaxJobs bounds the finished jobs kept for Get and List (default 1000);
// the oldest finished ones are forgotten first.
func WithMaxJobs(n int) Option { return func(o *options) { o.MaxJobs = n } }

// WithWorkDir sets the directory job work directories are made in (default
// os.TempDir()).
func WithWorkDir(dir string) Option { return func(o *options) { o.WorkDir = dir } }

// WithJobStore keeps the jobs in the database at path (jobs.Store), so
// that a Quantizer reopened on it, after a Close or a crash, has its
// finished jobs back with their reports and runs its unfinished ones again
// from the start. Without it jobs live in memory only.
func WithJobStore(path string) Option { return func(o *options) { o.storePath = path } }

// WithRetention forgets finished jobs once they ended longer ago than d; 0
// (the default) keeps them until WithMaxJobs pushes them out.
func WithRetention(d time.Duration) Option { return func(o *options) { o.Retention = d } }

// WithDefaultCalibration replaces the built-in calibration text used when a
// request has none.
func WithDefaultCalibration(text string) Option { return func(o *options) { o.calibText = text } }

// WithMemoryBudget bounds the memory one job may need, estimated from the
// source's shapes before it is loaded (its float32 weights and the
// ternary result): a job over it fails with model.ErrOverBudget
// (RESOURCE_EXHAUSTED) without allocating them. The default is half the
// machine's memory; a negative budget turns the check off.
func WithMemoryBudget(bytes int64) Option { return func(o *options) { o.MemoryBudget = bytes } }

// WithI2SBlock sets the block size of the I2_S tensors of GGUF sources
// (model.WithI2SBlock: 128 by default, 64 for files from ARM builds of
// bitnet.cpp's llama-quantize).
func WithI2SBlock(b ternary.I2SBlock) Option { return func(o *options) { o.i2sBlock = b } }

// WithLogger logs what clients are not told (a job's panic and stack).
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.Log = l } }

// WithClock sets the time source (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.Clock = now } }

// Quantizer queues and runs quantization jobs. It is safe for concurrent use.
type Quantizer struct {
	src  Source
	sink Sink
	opts options

	ctx     context.Context // cancelled by Close: stops the workers and their jobs
	stop    context.CancelFunc
	workers *jobs.Workers
	store   *jobs.Store // nil without WithJobStore

	mu     sync.Mutex
	closed bool
	table  *jobs.Table[*job]
}

// job is the mutable state of a job, guarded by Quantizer.mu.
type job struct {
	snap    Job
	seq     uint64
	cancel  context.CancelCauseFunc // set while running
	changed chan struct{}           // closed and replaced on every change
	origin  telemetry.Origin        // the creating request's span: the job's spans join its trace
}

// The jobs.Entry methods, called with Quantizer.mu held.
func (j *job) JobID() string  { return j.snap.ID }
func (j *job) JobKey() string { return j.snap.Request.RequestID }
func (j *job) JobSeq() uint64 { return j.seq }
func (j *job) Terminal() bool { return j.snap.State.Terminal() }

// New starts a Quantizer reading checkpoints from src and writing results to
// sink. Close stops it.
func New(src Source, sink Sink, opts ...Option) (*Quantizer, error) {
	o := options{Config: jobs.DefaultConfig(), calibText: builtinCalibration}
	for _, f := range opts {
		f(&o)
	}
	if src == nil || sink == nil {
		return nil, fmt.Errorf("quantizer: source and sink are required: %w", jobs.ErrInvalid)
	}
	if err := o.Check("quantizer"); err != nil {
		return nil, err
	}
	if o.WorkDir == "" {
		o.WorkDir = os.TempDir()
	}
	if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("quantizer: work dir: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	q := &Quantizer{src: src, sink: sink, opts: o, ctx: ctx, stop: stop,
		table: jobs.NewTable[*job](jobs.ErrInvalid), workers: jobs.NewWorkers()}
	if o.storePath != "" {
		store, err := jobs.OpenStore(o.storePath)
		if err != nil {
			stop()
			return nil, fmt.Errorf("quantizer: %w", err)
		}
		q.store = store
		if err := q.load(); err != nil {
			stop()
			store.Close()
			return nil, err
		}
	}
	q.workers.Start(ctx, o.Workers, q.next)
	q.workers.Signal()
	if o.Retention > 0 {
		q.workers.Every(ctx, jobs.ExpireInterval(o.Retention), func() {
			q.mu.Lock()
			defer q.mu.Unlock()
			q.evictLocked()
		})
	}
	return q, nil
}

// Close cancels running jobs, cancels queued ones and waits for the workers.
// With a job store, running and queued jobs stay queued in it instead, for
// the next Quantizer opened on it.
func (q *Quantizer) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	q.mu.Unlock()
	q.stop()
	q.workers.Wait()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.table.ClearQueue()
	if q.store != nil {
		return q.store.Close()
	}
	for _, j := range q.table.All() {
		if !j.snap.State.Terminal() {
			q.finishLocked(j, jobs.StateCancelled, fmt.Errorf("%w: %w", errClosed(), context.Canceled))
		}
	}
	return nil
}

// Create validates req, fills in its defaults and queues it. A request whose
// RequestID matches an earlier job's returns that job instead.
func (q *Quantizer) Create(ctx context.Context, req Request) (Job, error) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return Job{}, errClosed()
	}
	if req.RequestID != "" {
		if j, ok := q.table.ByKey(req.RequestID); ok {
			defer q.mu.Unlock()
			return j.snapshot(), nil
		}
	}
	q.mu.Unlock()
	req, err := q.prepare(ctx, req)
	if err != nil {
		return Job{}, fmt.Errorf("create job: %w", err)
	}
	id, err := jobs.NewID("qj-")
	if err != nil {
		return Job{}, fmt.Errorf("create job: %w", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return Job{}, errClosed()
	}
	if req.RequestID != "" {
		if j, ok := q.table.ByKey(req.RequestID); ok { // a concurrent twin won
			return j.snapshot(), nil
		}
	}
	now := q.opts.Clock().UTC()
	j := &job{seq: q.table.NextSeq(), changed: make(chan struct{}), origin: telemetry.OriginOf(ctx), snap: Job{
		ID: id, State: jobs.StateQueued, Request: req, CreateTime: now,
		Progress: Progress{Phase: PhaseQueued, UpdateTime: now},
	}}
	if q.table.Queued() >= q.opts.QueueSize {
		return Job{}, fmt.Errorf("create job: %d jobs queued already: %w", q.opts.QueueSize, jobs.ErrQueueFull)
	}
	if err := q.saveLocked(j); err != nil {
		return Job{}, fmt.Errorf("create job: %w", err)
	}
	q.table.Enqueue(j)
	q.workers.Signal()
	q.table.Add(j)
	q.evictLocked()
	return j.snapshot(), nil
}

// Get returns a job.
func (q *Quantizer) Get(ctx context.Context, id string) (Job, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	j, ok := q.table.Get(id)
	if !ok {
		return Job{}, fmt.Errorf("job %q: %w", id, jobs.ErrNotFound)
	}
	return j.snapshot(), nil
}

// List returns a page of jobs, newest first, and the next page's token
// ("" on the last page). Reports' per-linear entries are left out.
func (q *Quantizer) List(ctx context.Context, o ListOptions) ([]Job, string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	page, next, err := q.table.Page(o.PageSize, o.PageToken, func(j *job) bool { return o.State == 0 || j.snap.State == o.State })
	if err != nil {
		return nil, "", fmt.Errorf("list jobs: %w", err)
	}
	out := make([]Job, 0, len(page))
	for _, j := range page {
		s := j.snapshot()
		s.Report.Linears = nil
		out = append(out, s)
	}
	return out, next, nil
}

// Cancel asks a job to stop: a queued job is cancelled at once, a running
// one moves to CANCELLING and to CANCELLED when its worker stops. Cancelling
// a finished job returns it unchanged.
func (q *Quantizer) Cancel(ctx context.Context, id string) (Job, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	j, ok := q.table.Get(id)
	if !ok {
		return Job{}, fmt.Errorf("job %q: %w", id, jobs.ErrNotFound)
	}
	switch j.snap.State {
	case jobs.StateQueued:
		q.table.Unqueue(j)
		q.finishLocked(j, jobs.StateCancelled, fmt.Errorf("cancelled while queued: %w", context.Canceled))
	case jobs.StateRunning:
		j.snap.State = jobs.StateCancelling
		j.cancel(fmt.Errorf("cancelled by request: %w", context.Canceled))
		_ = q.saveLocked(j)
		q.notifyLocked(j)
	}
	return j.snapshot(), nil
}

// Watch calls fn with the job's current snapshot and then after each change
// (changes that happen while fn runs are coalesced into the latest
// snapshot) until the job is terminal, ctx is done, a Quantizer with a job
// store closes (ErrClosed) or fn returns an error.
func (q *Quantizer) Watch(ctx context.Context, id string, fn func(Job) error) error {
	// With a store, Close leaves unfinished jobs queued in it: their
	// watchers end with ErrClosed. Without one, Close finishes them.
	var closed <-chan struct{}
	if q.store != nil {
		closed = q.ctx.Done()
	}
	for {
		q.mu.Lock()
		j, ok := q.table.Get(id)
		if !ok {
			q.mu.Unlock()
			return fmt.Errorf("job %q: %w", id, jobs.ErrNotFound)
		}
		snap, changed := j.snapshot(), j.changed
		q.mu.Unlock()
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
		case <-closed:
			return fmt.Errorf("watch job %q: %w", id, errClosed())
		}
	}
}

// next takes the oldest queued job for a worker, or returns false when
// there is none or the Quantizer is closing.
func (q *Quantizer) next() (func(), bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ctx.Err() != nil {
		return nil, false
	}
	j, ok := q.table.Take(q.workers)
	return func() { q.runJob(j) }, ok
}

func (q *Quantizer) runJob(j *job) {
	q.mu.Lock()
	if j.snap.State != jobs.StateQueued {
		// Cancelled between next and here: it must not run after all.
		q.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancelCause(q.ctx)
	defer cancel(nil)
	j.cancel = cancel
	j.snap.State = jobs.StateRunning
	j.snap.StartTime = q.opts.Clock().UTC()
	req, id := j.snap.Request, j.snap.ID
	q.logLocked(j, "started: %s to %s", sourceText(req), req.Target)
	_ = q.saveLocked(j) // a failed save is not fatal: a restart sees the job queued and runs it
	q.notifyLocked(j)
	q.mu.Unlock()

	r := &runner{q: q, j: j, id: id, req: req,
		phases: j.origin.StartJob("github.com/bitnet-mesh/bitnet-mesh/services/quantizer", "quantize.job",
			attribute.String("bitnet.job_id", id), attribute.String("bitnet.target", string(req.Target)))}
	ref, err := r.runSafe(ctx)
	r.phases.End(err)

	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case err == nil:
		j.snap.Result = &ref
		j.snap.Progress = Progress{Phase: PhaseDone, Fraction: 1, Message: "stored as " + ref.String(), UpdateTime: q.opts.Clock().UTC()}
		q.finishLocked(j, jobs.StateSucceeded, nil)
	case ctx.Err() != nil && q.ctx.Err() != nil && q.store != nil && j.snap.State != jobs.StateCancelling:
		// Close with a store: stay queued in it; the next Quantizer runs
		// the job again.
		j.snap.State, j.cancel = jobs.StateQueued, nil
		j.snap.Progress = Progress{Phase: PhaseQueued, UpdateTime: q.opts.Clock().UTC()}
		q.logLocked(j, "stopped by a shutdown: queued to run again")
		_ = q.saveLocked(j)
		q.notifyLocked(j)
	case ctx.Err() != nil:
		cause := context.Cause(ctx)
		if errors.Is(cause, context.Canceled) && q.ctx.Err() != nil && j.snap.State != jobs.StateCancelling {
			cause = fmt.Errorf("%w: %w", errClosed(), context.Canceled)
		}
		q.finishLocked(j, jobs.StateCancelled, cause)
	default:
		q.finishLocked(j, jobs.StateFailed, err)
	}
}

// runSafe is run, with a panic turned into an jobs.ErrInternal failure: the job
// is recorded FAILED, the stack goes to the log and the process lives on.
func (r *runner) runSafe(ctx context.Context) (ref artifact.Ref, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.q.opts.Log.Error("quantization job panicked", zap.String("job", r.id), zap.Any("panic", p),
				zap.ByteString("stack", debug.Stack()))
			ref, err = artifact.Ref{}, fmt.Errorf("job %s stopped on an internal error: %w", r.id, jobs.ErrInternal)
		}
	}()
	return r.run(ctx)
}

// update applies fn to a running job's snapshot and wakes its watchers.
func (q *Quantizer) update(j *job, fn func(*Job)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	fn(&j.snap)
	q.notifyLocked(j)
}

func (q *Quantizer) finishLocked(j *job, s jobs.State, err error) {
	switch {
	case s == jobs.StateSucceeded && j.snap.Result != nil:
		q.logLocked(j, "succeeded: stored as %s", j.snap.Result)
	case err != nil:
		q.logLocked(j, "%s: %v", s, err)
	default:
		q.logLocked(j, "%s", s)
	}
	j.snap.State = s
	j.snap.Err = err
	j.snap.EndTime = q.opts.Clock().UTC()
	j.cancel = nil
	_ = q.saveLocked(j) // a failed save is not fatal: a restart runs the job again
	q.notifyLocked(j)
	q.evictLocked()
}

// logLocked appends a line to j's log.
func (q *Quantizer) logLocked(j *job, format string, args ...any) {
	j.snap.Log = jobs.AppendLog(j.snap.Log, q.opts.Clock().UTC(), format, args...)
}

func (q *Quantizer) notifyLocked(j *job) {
	close(j.changed)
	j.changed = make(chan struct{})
}

// evictLocked forgets the finished jobs past the retention and the oldest
// finished ones beyond maxJobs (and their records).
func (q *Quantizer) evictLocked() {
	var forget func(*job)
	if q.store != nil {
		forget = func(j *job) { _ = q.store.Delete(j.snap.ID) } // one left behind expires at the next start
	}
	if r := q.opts.Retention; r > 0 {
		cutoff := q.opts.Clock().Add(-r)
		q.table.Expire(func(j *job) bool { return j.snap.EndTime.Before(cutoff) }, forget)
	}
	q.table.Evict(q.opts.MaxJobs, forget)
}

// snapshot copies the parts of the state that keep changing.
func (j *job) snapshot() Job {
	s := j.snap
	s.Report.Linears = slices.Clone(s.Report.Linears)
	s.Log = slices.Clone(s.Log)
	if s.Result != nil {
		r := *s.Result
		s.Result = &r
	}
	return s
}
