package train

import (
	"runtime"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// TestMemoryBytes checks the estimate against what New really allocates
// for a small and a wider model: it must not under-count by more than 10%
// (the check would let through runs that do not fit) nor over-count by more
// than 50% (it would refuse runs that do).
func TestMemoryBytes(t *testing.T) {
	path, _ := tokenFile(t)
	wide := smallConfig()
	wide.HiddenSize, wide.IntermediateSize, wide.NumHeads, wide.NumKVHeads, wide.HeadDim, wide.NumLayers = 128, 384, 4, 2, 32, 3
	for _, tc := range []struct {
		name string
		c    model.Config
		full bool
	}{{"small", smallConfig(), false}, {"wide", wide, false}, {"wide full precision", wide, true}} {
		t.Run(tc.name, func(t *testing.T) {
			o := smallOptions()
			o.FullPrec = tc.full
			d, err := OpenDataset(path, o.Seq, o.ValFrac)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			tr, err := New(tc.c, d, o)
			if err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			defer tr.Close()
			got := int64(after.TotalAlloc - before.TotalAlloc)
			est := MemoryBytes(tc.c, o)
			t.Logf("estimate %d, allocated %d (%.2fx)", est, got, float64(est)/float64(got))
			if float64(est) < 0.9*float64(got) || float64(est) > 1.5*float64(got) {
				t.Errorf("MemoryBytes = %d, New allocated %d: want within -10%%/+50%%", est, got)
			}
		})
	}
}

// TestPoolPanic: a panic in a unit run on a pool goroutine reaches the
// caller of run, where it can be recovered, instead of ending the process;
// the pool keeps working afterwards.
func TestPoolPanic(t *testing.T) {
	p := newPool(4)
	defer p.close()
	for range 3 {
		func() {
			defer func() {
				if r := recover(); r != "unit 7" {
					t.Errorf("recovered %v, want unit 7", r)
				}
			}()
			p.run(64, func(u int) {
				if u == 7 {
					panic("unit 7")
				}
			})
		}()
	}
	n := 0
	p.run(1, func(int) { n++ })
	if n != 1 {
		t.Errorf("after panics: ran %d units, want 1", n)
	}
}
