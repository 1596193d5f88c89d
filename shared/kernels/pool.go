package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// spinTime is how long an idle worker polls for the next task before it
// parks: a model calls the engine in quick succession, and waking a parked
// goroutine costs tens of microseconds, as much as a small product. While
// the pool is held (Engine.Hold: a model's forward pass) workers poll
// without a deadline, because the gaps between its products (attention,
// norms) can pass spinTime and a parked worker comes back late: on a
// two-thread decode step that cost 10-20% of the step.
const spinTime = 50 * time.Microsecond

// pool is a fixed set of worker goroutines owned by an Engine. A call splits
// its rows into chunks; the caller and any idle workers claim chunks from a
// shared counter until none are left. Each row belongs to exactly one chunk,
// so the result does not depend on who computed it or on the thread count.
type pool struct {
	tasks chan *task
	quit  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
	holds atomic.Int32 // Engine.Hold calls not yet released
}

// task is one call's work: chunks [0, n) of fn.
type task struct {
	fn   func(chunk int)
	n    int64
	next atomic.Int64
	left atomic.Int64 // chunks not yet finished
	done sync.WaitGroup
}

// newPool starts workers goroutines (none when workers <= 0).
func newPool(workers int) *pool {
	p := &pool{tasks: make(chan *task, 4*max(workers, 1)), quit: make(chan struct{})}
	p.wg.Add(workers)
	for range workers {
		go p.worker()
	}
	return p
}

func (p *pool) worker() {
	defer p.wg.Done()
	for {
		var t *task
		select {
		case t = <-p.tasks:
		case <-p.quit:
			return
		}
		for t != nil {
			t.run()
			t = p.poll()
		}
	}
}

// poll returns the next task if one arrives within spinTime, or while the
// pool is held, else nil.
func (p *pool) poll() *task {
	deadline := time.Now().Add(spinTime)
	for i := 1; ; i++ {
		select {
		case t := <-p.tasks:
			return t
		case <-p.quit:
			return nil
		default:
		}
		if i%32 == 0 {
			if p.holds.Load() <= 0 && time.Now().After(deadline) {
				return nil
			}
			runtime.Gosched()
		}
	}
}

// run claims and runs chunks until none are left.
func (t *task) run() {
	for {
		c := t.next.Add(1) - 1
		if c >= t.n {
			return
		}
		t.fn(int(c))
		t.left.Add(-1)
		t.done.Done()
	}
}

// do runs fn(0..n-1), offering the work to at most helpers idle workers and
// working on it in the calling goroutine too. It returns when every chunk is done.
func (p *pool) do(n, helpers int, fn func(chunk int)) {
	if n <= 0 {
		return
	}
	if n == 1 || helpers <= 0 {
		for c := range n {
			fn(c)
		}
		return
	}
	t := &task{fn: fn, n: int64(n)}
	t.done.Add(n)
	t.left.Store(int64(n))
	for range min(helpers, n-1) {
		select {
		case p.tasks <- t:
		default: // every worker is busy: the caller does more itself
		}
	}
	t.run()
	p.wait(t)
}

// wait returns when every chunk of t is done. The last chunks are running
// on workers: the caller polls for them (while the pool is held, until
// they are done; else for spinTime) before it parks, because a parked
// caller wakes tens of microseconds after the last worker finishes, and a
// two-thread decode step waits like that at each of its ~200 products.
func (p *pool) wait(t *task) {
	var deadline time.Time
	for i := 1; t.left.Load() > 0; i++ {
		if i%64 != 0 {
			continue
		}
		if p.holds.Load() <= 0 {
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(spinTime)
			} else if now.After(deadline) {
				break
			}
		}
		runtime.Gosched()
	}
	t.done.Wait()
}

// close stops the workers and waits for them; it is idempotent.
func (p *pool) close() {
	p.once.Do(func() { close(p.quit) })
	p.wg.Wait()
}
