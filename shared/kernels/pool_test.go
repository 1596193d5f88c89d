package kernels

import (
	"runtime"
	"testing"
	"time"
)

// TestEngineCleanup checks that an engine dropped without Close stops its
// workers.
func TestEngineCleanup(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		for range 4 {
			if _, err := New(WithThreads(4)); err != nil {
				t.Fatal(err)
			}
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("got %d goroutines after dropping engines, want <= %d", n, before)
	}
}

func TestPoolDo(t *testing.T) {
	p := newPool(3)
	defer p.close()
	for _, n := range []int{0, 1, 2, 7, 100} {
		hits := make([]int32, n)
		p.do(n, 3, func(c int) { hits[c]++ })
		for c, h := range hits {
			if h != 1 {
				t.Fatalf("n=%d: chunk %d ran %d times, want 1", n, c, h)
			}
		}
	}
}
