package kernels

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

// TestParallel checks that every item runs exactly once, in ranges of at
// least grain items (but the last), for several thread counts, and on nil or
// closed engines.
func TestParallel(t *testing.T) {
	closed, err := New(WithThreads(3))
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	engines := map[string]*Engine{"nil": nil, "closed": closed}
	for _, th := range []int{1, 2, 4} {
		e, err := New(WithThreads(th))
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		engines[fmt.Sprintf("threads=%d", th)] = e
	}
	for name, e := range engines {
		for _, tc := range []struct{ n, grain int }{{0, 1}, {1, 1}, {5, 0}, {7, 3}, {100, 1}, {100, 40}, {1000, 7}} {
			hits := make([]int32, tc.n)
			var ranges atomic.Int32
			e.Parallel(tc.n, tc.grain, func(lo, hi int) {
				ranges.Add(1)
				if hi-lo < max(tc.grain, 1) && hi != tc.n {
					t.Errorf("%s n=%d grain=%d: range [%d,%d) shorter than grain", name, tc.n, tc.grain, lo, hi)
				}
				for i := lo; i < hi; i++ {
					atomic.AddInt32(&hits[i], 1)
				}
			})
			for i, h := range hits {
				if h != 1 {
					t.Fatalf("%s n=%d grain=%d: item %d ran %d times, want 1", name, tc.n, tc.grain, i, h)
				}
			}
			if th := e.Threads(); int(ranges.Load()) > th {
				t.Errorf("%s n=%d: got %d ranges, want <= %d threads", name, tc.n, ranges.Load(), th)
			}
		}
	}
}

// TestEngineQuantize checks that the pooled quantiser matches
// Activations.Quantize exactly, and rejects bad shapes.
func TestEngineQuantize(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, th := range []int{1, 2, 3} {
		e, err := New(WithThreads(th))
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		for _, sh := range [][2]int{{1, 7}, {3, 2560}, {64, 2560}, {130, 300}} {
			n, k := sh[0], sh[1]
			x := make([]float32, n*k)
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			x[0] = float32(math.Inf(1)) // one non-finite token takes the slow path
			want, got := NewActivations(n, k), NewActivations(n, k)
			if err := want.Quantize(x); err != nil {
				t.Fatal(err)
			}
			if err := e.Quantize(got, x); err != nil {
				t.Fatal(err)
			}
			for i := range want.Q {
				if got.Q[i] != want.Q[i] {
					t.Fatalf("threads=%d %dx%d: q[%d] got %d, want %d", th, n, k, i, got.Q[i], want.Q[i])
				}
			}
			for i := range n {
				if math.Float32bits(got.Scale[i]) != math.Float32bits(want.Scale[i]) || got.Sum[i] != want.Sum[i] {
					t.Fatalf("threads=%d %dx%d token %d: got scale %v sum %d, want %v %d",
						th, n, k, i, got.Scale[i], got.Sum[i], want.Scale[i], want.Sum[i])
				}
			}
		}
		if err := e.Quantize(NewActivations(2, 4), make([]float32, 7)); !errors.Is(err, ErrShape) {
			t.Errorf("short input: got %v, want ErrShape", err)
		}
		if err := e.Quantize(nil, nil); !errors.Is(err, ErrShape) {
			t.Errorf("nil activations: got %v, want ErrShape", err)
		}
	}
}
