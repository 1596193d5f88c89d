package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// Workers is a pool of goroutines that run queued jobs. Each asks take for
// work; while there is none it sleeps until Signal or the end of the pool's
// context. Wait returns once they have all stopped.
type Workers struct {
	wake chan struct{} // capacity 1: a job was queued
	wg   sync.WaitGroup
}

// NewWorkers returns a pool with no workers yet: keep it where take can
// reach it (take may Signal), then Start it.
func NewWorkers() *Workers { return &Workers{wake: make(chan struct{}, 1)} }

// Start starts n workers that run until ctx is done. take returns the next
// job to run, or false when there is none (or ctx is done); it should Signal
// when it leaves more queued, so that another worker wakes.
func (w *Workers) Start(ctx context.Context, n int, take func() (run func(), ok bool)) {
	for range n {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for {
				if run, ok := take(); ok {
					run()
					continue
				}
				select {
				case <-ctx.Done():
					return
				case <-w.wake:
				}
			}
		}()
	}
}

// Signal wakes a worker (one wake-up is enough: a worker that takes a job
// passes it on while more are queued).
func (w *Workers) Signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Every runs fn every interval until ctx is done (housekeeping beside the
// workers, such as expiring old jobs); Wait waits for it too.
func (w *Workers) Every(ctx context.Context, interval time.Duration, fn func()) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				fn()
			}
		}
	}()
}

// Wait blocks until every worker has stopped (after the context is done).
func (w *Workers) Wait() { w.wg.Wait() }

// NewID returns prefix followed by 16 random hex digits ("qj-" for a
// quantizer job, "tj-" for a training job).
func NewID(prefix string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("job id: %w", err)
	}
	return prefix + hex.EncodeToString(b[:]), nil
}
