package train

import (
	"sync"
	"sync/atomic"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

// pool runs parallel loops on a fixed set of worker goroutines. The owner
// (the Trainer) stops them with close. Units are claimed dynamically, which
// balances load without affecting results: callers make each unit's output
// depend only on the unit, never on which goroutine ran it.
type pool struct {
	simd    bool // float32 products use the SIMD tiles (fixed per pool, so per run)
	threads int
	jobs    chan *job
	wg      sync.WaitGroup
}

type job struct {
	units int
	fn    func(w, u int)
	next  atomic.Int64
	done  sync.WaitGroup
}

// newPool starts threads-1 workers; fl decides whether float32 products
// use the SIMD tiles (kernels.FloatsFor of the run's kernel path).
func newPool(threads int, fl kernels.Floats) *pool {
	p := &pool{threads: max(threads, 1), jobs: make(chan *job), simd: fl.SIMD()}
	for i := 1; i < p.threads; i++ {
		p.wg.Add(1)
		go func(w int) {
			defer p.wg.Done()
			for j := range p.jobs {
				j.work(w)
				j.done.Done()
			}
		}(i)
	}
	return p
}

func (j *job) work(w int) {
	for {
		u := int(j.next.Add(1) - 1)
		if u >= j.units {
			return
		}
		j.fn(w, u)
	}
}

// run calls fn(u) for every u in [0, units), spread over the workers and the
// calling goroutine, and returns when all calls have returned.
func (p *pool) run(units int, fn func(u int)) {
	p.runW(units, func(_, u int) { fn(u) })
}

// runW is run passing also the index in [0, threads) of the goroutine that
// runs each unit, for per-worker scratch.
func (p *pool) runW(units int, fn func(w, u int)) {
	if units <= 0 {
		return
	}
	helpers := min(p.threads, units) - 1
	if helpers <= 0 {
		for u := 0; u < units; u++ {
			fn(0, u)
		}
		return
	}
	j := &job{units: units, fn: fn}
	j.done.Add(helpers)
	for i := 0; i < helpers; i++ {
		p.jobs <- j
	}
	j.work(0)
	j.done.Wait()
}

// close stops the workers; the pool must not be used afterwards.
func (p *pool) close() {
	if p.jobs != nil {
		close(p.jobs)
		p.wg.Wait()
		p.jobs = nil
	}
}
