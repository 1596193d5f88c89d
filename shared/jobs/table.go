package jobs

import (
	"fmt"
	"slices"
	"strconv"
)

// Entry is what a Table needs of a service's job record (a pointer type).
type Entry interface {
	comparable
	// JobID is the job's ID.
	JobID() string
	// JobKey is the client's request ID ("" for none): Create with the same
	// key returns the same job.
	JobKey() string
	// JobSeq orders jobs by creation; it doubles as the paging token.
	JobSeq() uint64
	// Terminal reports whether the job has finished (may be evicted).
	Terminal() bool
}

// Paging limits of Table.Page.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Table holds a service's jobs. It is not safe for concurrent use: the
// service guards it with its own mutex. The zero value is not usable; call
// NewTable.
type Table[E Entry] struct {
	invalid error
	jobs    map[string]E
	byKey   map[string]E
	order   []E // by creation, oldest first
	queued  []E // oldest first
	seq     uint64
}

// NewTable returns an empty table; bad page sizes and tokens are errors
// wrapping invalid (the service's invalid-argument kind).
func NewTable[E Entry](invalid error) *Table[E] {
	return &Table[E]{invalid: invalid, jobs: map[string]E{}, byKey: map[string]E{}}
}

// NextSeq returns the sequence number for a new job.
func (t *Table[E]) NextSeq() uint64 {
	t.seq++
	return t.seq
}

// Add records e (a new job, or one taken back from disk: later NextSeq
// numbers stay above its sequence number).
func (t *Table[E]) Add(e E) {
	t.seq = max(t.seq, e.JobSeq())
	t.jobs[e.JobID()] = e
	t.order = append(t.order, e)
	if k := e.JobKey(); k != "" {
		t.byKey[k] = e
	}
}

// Get returns the job with the ID.
func (t *Table[E]) Get(id string) (E, bool) {
	e, ok := t.jobs[id]
	return e, ok
}

// ByKey returns the job created with the request ID key.
func (t *Table[E]) ByKey(key string) (E, bool) {
	e, ok := t.byKey[key]
	return e, ok
}

// All returns every job in creation order.
func (t *Table[E]) All() []E { return slices.Clone(t.order) }

// Enqueue puts e last in the queue.
func (t *Table[E]) Enqueue(e E) { t.queued = append(t.queued, e) }

// Queued returns the number of queued jobs.
func (t *Table[E]) Queued() int { return len(t.queued) }

// Dequeue takes the oldest queued job.
func (t *Table[E]) Dequeue() (E, bool) {
	var zero E
	if len(t.queued) == 0 {
		return zero, false
	}
	e := t.queued[0]
	t.queued[0] = zero
	t.queued = t.queued[1:]
	return e, true
}

// Take is Dequeue for a worker of w: it wakes another worker when more
// jobs are left queued.
func (t *Table[E]) Take(w *Workers) (E, bool) {
	e, ok := t.Dequeue()
	if ok && len(t.queued) > 0 {
		w.Signal()
	}
	return e, ok
}

// Unqueue takes e out of the queue (a cancel before it ran).
func (t *Table[E]) Unqueue(e E) {
	t.queued = slices.DeleteFunc(t.queued, func(q E) bool { return q == e })
}

// ClearQueue forgets every queued job (they stay in the table).
func (t *Table[E]) ClearQueue() { t.queued = nil }

// Page returns up to size jobs (0: DefaultPageSize; at most MaxPageSize)
// for which keep is true, newest first, after the page that token ended
// ("" for the first), and the next page's token ("" on the last page).
func (t *Table[E]) Page(size int, token string, keep func(E) bool) ([]E, string, error) {
	switch {
	case size < 0:
		return nil, "", fmt.Errorf("page size %d: %w", size, t.invalid)
	case size == 0:
		size = DefaultPageSize
	}
	size = min(size, MaxPageSize)
	before := uint64(0)
	if token != "" {
		n, err := strconv.ParseUint(token, 36, 64)
		if err != nil || n == 0 {
			return nil, "", fmt.Errorf("page token %q: %w", token, t.invalid)
		}
		before = n
	}
	var out []E
	var last uint64
	for i := len(t.order) - 1; i >= 0; i-- {
		e := t.order[i]
		if (before != 0 && e.JobSeq() >= before) || !keep(e) {
			continue
		}
		if len(out) == size {
			return out, strconv.FormatUint(last, 36), nil
		}
		out = append(out, e)
		last = e.JobSeq()
	}
	return out, "", nil
}

// Evict forgets the oldest finished jobs beyond max, calling forget for
// each (e.g. to remove its files).
func (t *Table[E]) Evict(max int, forget func(E)) {
	excess := len(t.order) - max
	if excess <= 0 {
		return
	}
	t.order = slices.DeleteFunc(t.order, func(e E) bool {
		if excess == 0 || !e.Terminal() {
			return false
		}
		excess--
		t.forget(e)
		if forget != nil {
			forget(e)
		}
		return true
	})
}

// Expire forgets the finished jobs for which old is true, calling forget
// (when not nil) for each (the service drops what it keeps beside them).
func (t *Table[E]) Expire(old func(E) bool, forget func(E)) {
	t.order = slices.DeleteFunc(t.order, func(e E) bool {
		if !e.Terminal() || !old(e) {
			return false
		}
		t.forget(e)
		if forget != nil {
			forget(e)
		}
		return true
	})
}

// forget drops e from the indexes (not from order).
func (t *Table[E]) forget(e E) {
	delete(t.jobs, e.JobID())
	if k := e.JobKey(); k != "" && t.byKey[k] == e {
		delete(t.byKey, k)
	}
}
