package trainer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Option configures a Trainer.
type Option func(*settings)

type settings struct {
	workers   int
	queueSize int
	maxJobs   int
	workDir   string
	runner    Runner
	clock     func() time.Time
}

// WithWorkers sets how many jobs run at once (default 1: a job uses every
// core already).
func WithWorkers(n int) Option { return func(o *settings) { o.workers = n } }

// WithQueueSize bounds the queued (not yet running) jobs (default 16); Create
// fails with ErrQueueFull beyond it.
func WithQueueSize(n int) Option { return func(o *settings) { o.queueSize = n } }

// WithMaxJobs bounds the finished jobs kept for Get and List (default 1000);
// the oldest finished ones are forgotten (and their directories removed)
// first.
func WithMaxJobs(n int) Option { return func(o *settings) { o.maxJobs = n } }

// WithWorkDir sets the directory holding the jobs (default
// $TMPDIR/bitnet-trainer). Reopening a Trainer on the same directory takes
// its jobs back and resumes the unfinished ones.
func WithWorkDir(dir string) Option { return func(o *settings) { o.workDir = dir } }

// WithRunner sets what executes the training (default LocalRunner).
func WithRunner(r Runner) Option { return func(o *settings) { o.runner = r } }

// WithClock sets the time source (tests).
func WithClock(now func() time.Time) Option { return func(o *settings) { o.clock = now } }

// Trainer queues and runs training jobs. It is safe for concurrent use.
type Trainer struct {
	src  Source
	sink Sink
	opts settings

	ctx  context.Context // cancelled by Close: stops the workers and their jobs
	stop context.CancelFunc
	wake chan struct{} // capacity 1: a job was queued
	wg   sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	pending []*job // queued jobs, oldest first
	jobs    map[string]*job
	order   []*job // by creation, oldest first
	byKey   map[string]*job
	seq     uint64
}

// job is the mutable state of a job, guarded by Trainer.mu.
type job struct {
	snap    Job
	seq     uint64
	dir     string                  // WORKDIR/jobs/ID
	cancel  context.CancelCauseFunc // set while running
	changed chan struct{}           // closed and replaced on every change
}

// New starts a Trainer reading inputs from src and writing results to sink,
// taking back the jobs persisted in its work directory. Close stops it.
func New(src Source, sink Sink, opts ...Option) (*Trainer, error) {
	o := settings{workers: 1, queueSize: defaultQueueSize, maxJobs: defaultMaxJobs, clock: time.Now, runner: LocalRunner{}}
	for _, f := range opts {
		f(&o)
	}
	switch {
	case src == nil || sink == nil || o.runner == nil:
		return nil, fmt.Errorf("trainer: source, sink and runner are required: %w", ErrInvalid)
	case o.workers < 1 || o.workers > 64:
		return nil, fmt.Errorf("trainer: %d workers, want 1 to 64: %w", o.workers, ErrInvalid)
	case o.queueSize < 1:
		return nil, fmt.Errorf("trainer: queue size %d, want at least 1: %w", o.queueSize, ErrInvalid)
	case o.maxJobs < 1:
		return nil, fmt.Errorf("trainer: max jobs %d, want at least 1: %w", o.maxJobs, ErrInvalid)
	}
	if o.workDir == "" {
		o.workDir = filepath.Join(os.TempDir(), "bitnet-trainer")
	}
	if err := os.MkdirAll(filepath.Join(o.workDir, jobsDir), 0o755); err != nil {
		return nil, fmt.Errorf("trainer: work dir: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	t := &Trainer{
		src: src, sink: sink, opts: o, ctx: ctx, stop: stop,
		wake: make(chan struct{}, 1),
		jobs: map[string]*job{}, byKey: map[string]*job{},
	}
	if err := t.load(); err != nil {
		stop()
		return nil, err
	}
	for range o.workers {
		t.wg.Add(1)
		go t.worker()
	}
	t.signal()
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
	t.wg.Wait()
	return nil
}

// Create validates req, fills in its defaults and queues it. A request whose
// RequestID matches an earlier job's returns that job instead.
func (t *Trainer) Create(ctx context.Context, req Request) (Job, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return Job{}, ErrClosed
	}
	if req.RequestID != "" {
		if j, ok := t.byKey[req.RequestID]; ok {
			defer t.mu.Unlock()
			return j.snapshot(), nil
		}
	}
	t.mu.Unlock()
	req, err := t.prepare(ctx, cloneRequest(req))
	if err != nil {
		return Job{}, fmt.Errorf("create job: %w", err)
	}
	id, err := newJobID()
	if err != nil {
		return Job{}, fmt.Errorf("create job: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return Job{}, ErrClosed
	}
	if req.RequestID != "" {
		if j, ok := t.byKey[req.RequestID]; ok { // a concurrent twin won
			return j.snapshot(), nil
		}
	}
	if len(t.pending) >= t.opts.queueSize {
		return Job{}, fmt.Errorf("create job: %d jobs queued already: %w", t.opts.queueSize, ErrQueueFull)
	}
	t.seq++
	j := &job{seq: t.seq, dir: filepath.Join(t.opts.workDir, jobsDir, id), changed: make(chan struct{}), snap: Job{
		ID: id, State: StateQueued, Request: req, CreateTime: t.opts.clock().UTC(), Runner: t.opts.runner.Name(),
		Metrics: Metrics{TotalSteps: req.Hyperparameters.Steps},
	}}
	if err := os.MkdirAll(j.dir, 0o755); err != nil {
		return Job{}, fmt.Errorf("create job: %w", err)
	}
	if err := t.saveLocked(j); err != nil {
		os.RemoveAll(j.dir)
		return Job{}, fmt.Errorf("create job: %w", err)
	}
	t.pending = append(t.pending, j)
	t.signal()
	t.jobs[id] = j
	t.order = append(t.order, j)
	if req.RequestID != "" {
		t.byKey[req.RequestID] = j
	}
	t.evictLocked()
	return j.snapshot(), nil
}

// Get returns a job.
func (t *Trainer) Get(ctx context.Context, id string) (Job, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	j, ok := t.jobs[id]
	if !ok {
		return Job{}, fmt.Errorf("job %q: %w", id, ErrNotFound)
	}
	return j.snapshot(), nil
}

// List returns a page of jobs, newest first, and the next page's token
// ("" on the last page).
func (t *Trainer) List(ctx context.Context, o ListOptions) ([]Job, string, error) {
	size := o.PageSize
	switch {
	case size < 0:
		return nil, "", fmt.Errorf("list jobs: page size %d: %w", size, ErrInvalid)
	case size == 0:
		size = defaultListPageSize
	}
	size = min(size, maxListPageSize)
	before := uint64(0)
	if o.PageToken != "" {
		n, err := strconv.ParseUint(o.PageToken, 36, 64)
		if err != nil || n == 0 {
			return nil, "", fmt.Errorf("list jobs: page token %q: %w", o.PageToken, ErrInvalid)
		}
		before = n
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Job
	var last uint64
	for i := len(t.order) - 1; i >= 0; i-- {
		j := t.order[i]
		if (before != 0 && j.seq >= before) || (o.State != 0 && j.snap.State != o.State) {
			continue
		}
		if len(out) == size {
			return out, strconv.FormatUint(last, 36), nil
		}
		out = append(out, j.snapshot())
		last = j.seq
	}
	return out, "", nil
}

// Cancel asks a job to stop: a queued job is cancelled at once, a running
// one moves to CANCELLING and to CANCELLED when it stops (before its next
// optimiser step). Cancelling a finished job returns it unchanged.
func (t *Trainer) Cancel(ctx context.Context, id string) (Job, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	j, ok := t.jobs[id]
	if !ok {
		return Job{}, fmt.Errorf("job %q: %w", id, ErrNotFound)
	}
	switch j.snap.State {
	case StateQueued:
		t.pending = slices.DeleteFunc(t.pending, func(p *job) bool { return p == j })
		t.finishLocked(j, StateCancelled, fmt.Errorf("cancelled while queued: %w", context.Canceled))
	case StateRunning:
		j.snap.State = StateCancelling
		j.cancel(fmt.Errorf("cancelled by request: %w", context.Canceled))
		t.notifyLocked(j, true)
	}
	return j.snapshot(), nil
}

// Watch calls fn with the job's current snapshot and then after each change
// (changes that happen while fn runs are coalesced into the latest
// snapshot) until the job is terminal, ctx is done, the Trainer closes
// (ErrClosed) or fn returns an error.
func (t *Trainer) Watch(ctx context.Context, id string, fn func(Job) error) error {
	for {
		t.mu.Lock()
		j, ok := t.jobs[id]
		if !ok {
			t.mu.Unlock()
			return fmt.Errorf("job %q: %w", id, ErrNotFound)
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
			return fmt.Errorf("watch job %q: %w", id, ErrClosed)
		}
	}
}

// signal wakes a worker (one wake-up is enough: a worker that takes a job
// passes it on while more are pending).
func (t *Trainer) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// worker runs queued jobs until Close.
func (t *Trainer) worker() {
	defer t.wg.Done()
	for {
		if j := t.next(); j != nil {
			t.runJob(j)
			continue
		}
		select {
		case <-t.ctx.Done():
			return
		case <-t.wake:
		}
	}
}

// next takes the oldest queued job, or returns nil when there is none or
// the Trainer is closing.
func (t *Trainer) next() *job {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pending) == 0 || t.ctx.Err() != nil {
		return nil
	}
	j := t.pending[0]
	t.pending[0] = nil
	t.pending = t.pending[1:]
	if len(t.pending) > 0 {
		t.signal()
	}
	return j
}

func (t *Trainer) runJob(j *job) {
	t.mu.Lock()
	ctx, cancel := context.WithCancelCause(t.ctx)
	defer cancel(nil)
	j.cancel = cancel
	j.snap.State = StateRunning
	if j.snap.StartTime.IsZero() {
		j.snap.StartTime = t.opts.clock().UTC()
	}
	req, id := j.snap.Request, j.snap.ID
	t.notifyLocked(j, true)
	t.mu.Unlock()

	x := &execution{t: t, j: j, id: id, req: req}
	refs, err := x.run(ctx)

	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case err == nil:
		j.snap.Results = refs
		t.finishLocked(j, StateSucceeded, nil)
		x.cleanup()
	case ctx.Err() != nil && t.ctx.Err() != nil && j.snap.State != StateCancelling:
		// Close: stay queued on disk; the next Trainer resumes the job.
		j.snap.State, j.cancel = StateQueued, nil
		t.notifyLocked(j, true)
	case ctx.Err() != nil:
		t.finishLocked(j, StateCancelled, context.Cause(ctx))
	default:
		t.finishLocked(j, StateFailed, err)
		x.cleanup()
	}
}

// update applies fn to a running job's snapshot and wakes its watchers;
// persist also writes job.json.
func (t *Trainer) update(j *job, persist bool, fn func(*Job)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fn(&j.snap)
	t.notifyLocked(j, persist)
}

func (t *Trainer) finishLocked(j *job, s State, err error) {
	j.snap.State = s
	j.snap.Err = err
	j.snap.EndTime = t.opts.clock().UTC()
	j.cancel = nil
	t.notifyLocked(j, true)
	t.evictLocked()
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

// evictLocked forgets the oldest finished jobs beyond maxJobs.
func (t *Trainer) evictLocked() {
	excess := len(t.order) - t.opts.maxJobs
	if excess <= 0 {
		return
	}
	t.order = slices.DeleteFunc(t.order, func(j *job) bool {
		if excess == 0 || !j.snap.State.Terminal() {
			return false
		}
		excess--
		delete(t.jobs, j.snap.ID)
		if k := j.snap.Request.RequestID; k != "" && t.byKey[k] == j {
			delete(t.byKey, k)
		}
		os.RemoveAll(j.dir)
		return true
	})
}

// snapshot copies the parts of the state that keep changing.
func (j *job) snapshot() Job {
	s := j.snap
	s.Validation = slices.Clone(s.Validation)
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

func newJobID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("job id: %w", err)
	}
	return "tj-" + hex.EncodeToString(b[:]), nil
}
