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

	"go.uber.org/zap"

	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
	"github.com/bitnet-mesh/bitnet-mesh/shared/hardware"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// Option configures a Quantizer.
type Option func(*options)

type options struct {
	workers   int
	queueSize int
	maxJobs   int
	workDir   string
	calibText string
	clock     func() time.Time
	budget    int64
	i2sBlock  ternary.I2SBlock
	log       *zap.Logger
}

// WithWorkers sets how many jobs run at once (default 1: a job uses every
// core already).
func WithWorkers(n int) Option { return func(o *options) { o.workers = n } }

// WithQueueSize bounds the queued (not yet running) jobs (default 16); Create
// fails with ErrQueueFull beyond it.
func WithQueueSize(n int) Option { return func(o *options) { o.queueSize = n } }

// WithMaxJobs bounds the finished jobs kept for Get and List (default 1000);
// the oldest finished ones are forgotten first.
func WithMaxJobs(n int) Option { return func(o *options) { o.maxJobs = n } }

// WithWorkDir sets the directory job work directories are made in (default
// os.TempDir()).
func WithWorkDir(dir string) Option { return func(o *options) { o.workDir = dir } }

// WithDefaultCalibration replaces the built-in calibration text used when a
// request has none.
func WithDefaultCalibration(text string) Option { return func(o *options) { o.calibText = text } }

// WithMemoryBudget bounds the memory one job may need, estimated from the
// source's shapes before it is loaded (its float32 weights and the
// ternary result): a job over it fails with model.ErrOverBudget
// (RESOURCE_EXHAUSTED) without allocating them. The default is half the
// machine's memory; a negative budget turns the check off.
func WithMemoryBudget(bytes int64) Option { return func(o *options) { o.budget = bytes } }

// WithI2SBlock sets the block size of the I2_S tensors of GGUF sources
// (model.WithI2SBlock: 128 by default, 64 for files from ARM builds of
// bitnet.cpp's llama-quantize).
func WithI2SBlock(b ternary.I2SBlock) Option { return func(o *options) { o.i2sBlock = b } }

// WithLogger logs what clients are not told (a job's panic and stack).
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.log = l } }

// WithClock sets the time source (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// Quantizer queues and runs quantization jobs. It is safe for concurrent use.
type Quantizer struct {
	src  Source
	sink Sink
	opts options

	ctx     context.Context // cancelled by Close: stops the workers and their jobs
	stop    context.CancelFunc
	workers *jobs.Workers

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
}

// The jobs.Entry methods, called with Quantizer.mu held.
func (j *job) JobID() string  { return j.snap.ID }
func (j *job) JobKey() string { return j.snap.Request.RequestID }
func (j *job) JobSeq() uint64 { return j.seq }
func (j *job) Terminal() bool { return j.snap.State.Terminal() }

// New starts a Quantizer reading checkpoints from src and writing results to
// sink. Close stops it.
func New(src Source, sink Sink, opts ...Option) (*Quantizer, error) {
	o := options{workers: 1, queueSize: defaultQueueSize, maxJobs: defaultMaxJobs, clock: time.Now, calibText: builtinCalibration, log: zap.NewNop()}
	for _, f := range opts {
		f(&o)
	}
	if o.budget == 0 {
		if hw, err := hardware.Detect(); err == nil {
			o.budget = int64(hw.MemoryBytes / 2)
		}
	}
	switch {
	case src == nil || sink == nil:
		return nil, fmt.Errorf("quantizer: source and sink are required: %w", ErrInvalid)
	case o.workers < 1 || o.workers > 64:
		return nil, fmt.Errorf("quantizer: %d workers, want 1 to 64: %w", o.workers, ErrInvalid)
	case o.queueSize < 1:
		return nil, fmt.Errorf("quantizer: queue size %d, want at least 1: %w", o.queueSize, ErrInvalid)
	case o.maxJobs < 1:
		return nil, fmt.Errorf("quantizer: max jobs %d, want at least 1: %w", o.maxJobs, ErrInvalid)
	}
	if o.workDir == "" {
		o.workDir = os.TempDir()
	}
	if err := os.MkdirAll(o.workDir, 0o755); err != nil {
		return nil, fmt.Errorf("quantizer: work dir: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	q := &Quantizer{src: src, sink: sink, opts: o, ctx: ctx, stop: stop,
		table: jobs.NewTable[*job](ErrInvalid), workers: jobs.NewWorkers()}
	q.workers.Start(ctx, o.workers, q.next)
	return q, nil
}

// Close cancels running jobs, cancels queued ones and waits for the workers.
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
	for _, j := range q.table.All() {
		if !j.snap.State.Terminal() {
			q.finishLocked(j, StateCancelled, fmt.Errorf("%w: %w", ErrClosed, context.Canceled))
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
		return Job{}, ErrClosed
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
		return Job{}, ErrClosed
	}
	if req.RequestID != "" {
		if j, ok := q.table.ByKey(req.RequestID); ok { // a concurrent twin won
			return j.snapshot(), nil
		}
	}
	now := q.opts.clock().UTC()
	j := &job{seq: q.table.NextSeq(), changed: make(chan struct{}), snap: Job{
		ID: id, State: StateQueued, Request: req, CreateTime: now,
		Progress: Progress{Phase: PhaseQueued, UpdateTime: now},
	}}
	if q.table.Queued() >= q.opts.queueSize {
		return Job{}, fmt.Errorf("create job: %d jobs queued already: %w", q.opts.queueSize, ErrQueueFull)
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
		return Job{}, fmt.Errorf("job %q: %w", id, ErrNotFound)
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
		return Job{}, fmt.Errorf("job %q: %w", id, ErrNotFound)
	}
	switch j.snap.State {
	case StateQueued:
		q.table.Unqueue(j)
		q.finishLocked(j, StateCancelled, fmt.Errorf("cancelled while queued: %w", context.Canceled))
	case StateRunning:
		j.snap.State = StateCancelling
		j.cancel(fmt.Errorf("cancelled by request: %w", context.Canceled))
		q.notifyLocked(j)
	}
	return j.snapshot(), nil
}

// Watch calls fn with the job's current snapshot and then after each change
// (changes that happen while fn runs are coalesced into the latest
// snapshot) until the job is terminal, ctx is done or fn returns an error.
func (q *Quantizer) Watch(ctx context.Context, id string, fn func(Job) error) error {
	for {
		q.mu.Lock()
		j, ok := q.table.Get(id)
		if !ok {
			q.mu.Unlock()
			return fmt.Errorf("job %q: %w", id, ErrNotFound)
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
	if j.snap.State != StateQueued {
		// Cancelled between next and here: it must not run after all.
		q.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancelCause(q.ctx)
	defer cancel(nil)
	j.cancel = cancel
	j.snap.State = StateRunning
	j.snap.StartTime = q.opts.clock().UTC()
	req, id := j.snap.Request, j.snap.ID
	q.logLocked(j, "started: %s to %s", sourceText(req), req.Target)
	q.notifyLocked(j)
	q.mu.Unlock()

	r := &runner{q: q, j: j, id: id, req: req}
	ref, err := r.runSafe(ctx)

	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case err == nil:
		j.snap.Result = &ref
		j.snap.Progress = Progress{Phase: PhaseDone, Fraction: 1, Message: "stored as " + ref.String(), UpdateTime: q.opts.clock().UTC()}
		q.finishLocked(j, StateSucceeded, nil)
	case ctx.Err() != nil:
		cause := context.Cause(ctx)
		if errors.Is(cause, context.Canceled) && q.ctx.Err() != nil && j.snap.State != StateCancelling {
			cause = fmt.Errorf("%w: %w", ErrClosed, context.Canceled)
		}
		q.finishLocked(j, StateCancelled, cause)
	default:
		q.finishLocked(j, StateFailed, err)
	}
}

// runSafe is run, with a panic turned into an ErrInternal failure: the job
// is recorded FAILED, the stack goes to the log and the process lives on.
func (r *runner) runSafe(ctx context.Context) (ref registry.Ref, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.q.opts.log.Error("quantization job panicked", zap.String("job", r.id), zap.Any("panic", p),
				zap.ByteString("stack", debug.Stack()))
			ref, err = registry.Ref{}, fmt.Errorf("job %s stopped on an internal error: %w", r.id, ErrInternal)
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

func (q *Quantizer) finishLocked(j *job, s State, err error) {
	switch {
	case s == StateSucceeded && j.snap.Result != nil:
		q.logLocked(j, "succeeded: stored as %s", j.snap.Result)
	case err != nil:
		q.logLocked(j, "%s: %v", s, err)
	default:
		q.logLocked(j, "%s", s)
	}
	j.snap.State = s
	j.snap.Err = err
	j.snap.EndTime = q.opts.clock().UTC()
	j.cancel = nil
	q.notifyLocked(j)
	q.evictLocked()
}

// logLocked appends a line to j's log.
func (q *Quantizer) logLocked(j *job, format string, args ...any) {
	j.snap.Log = jobs.AppendLog(j.snap.Log, q.opts.clock().UTC(), format, args...)
}

func (q *Quantizer) notifyLocked(j *job) {
	close(j.changed)
	j.changed = make(chan struct{})
}

// evictLocked forgets the oldest finished jobs beyond maxJobs.
func (q *Quantizer) evictLocked() { q.table.Evict(q.opts.maxJobs, nil) }

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
