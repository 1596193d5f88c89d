package inference

import (
	"slices"
	"sync"
	"time"
)

// rateWindow keeps one minute of generated-token counts (per second) and
// recent times to first token, for NodeInfo's load report.
type rateWindow struct {
	mu      sync.Mutex
	buckets [60]struct {
		sec int64
		n   int
	}
	ttft [64]struct {
		at time.Time
		d  time.Duration
	}
	ttftNext int
}

func (r *rateWindow) add(now time.Time, n int) {
	if n == 0 {
		return
	}
	sec := now.Unix()
	r.mu.Lock()
	b := &r.buckets[sec%60]
	if b.sec != sec {
		b.sec, b.n = sec, 0
	}
	b.n += n
	r.mu.Unlock()
}

func (r *rateWindow) firstToken(now time.Time, d time.Duration) {
	r.mu.Lock()
	r.ttft[r.ttftNext%len(r.ttft)] = struct {
		at time.Time
		d  time.Duration
	}{now, d}
	r.ttftNext++
	r.mu.Unlock()
}

// read returns tokens per second over the last minute and the median time to
// first token of the requests that started in it.
func (r *rateWindow) read(now time.Time) (float64, time.Duration) {
	sec := now.Unix()
	r.mu.Lock()
	defer r.mu.Unlock()
	total := 0
	for _, b := range r.buckets {
		if b.sec > sec-60 && b.sec <= sec {
			total += b.n
		}
	}
	var ds []time.Duration
	for _, t := range r.ttft {
		if !t.at.IsZero() && now.Sub(t.at) <= time.Minute {
			ds = append(ds, t.d)
		}
	}
	var p50 time.Duration
	if len(ds) > 0 {
		slices.Sort(ds)
		p50 = ds[len(ds)/2]
	}
	return float64(total) / 60, p50
}
