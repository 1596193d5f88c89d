package metal_test

import (
	"errors"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/metal"
)

// realGPU opens the Mac's GPU (and self-tests it, as a node does). A Mac
// without a usable Metal device (a VM) skips the real-GPU runs; any other
// failure fails the test.
func realGPU(t testing.TB) *metal.GPU {
	t.Helper()
	g, err := metal.Open()
	if errors.Is(err, metal.ErrUnavailable) {
		t.Logf("no Metal GPU: %v", err)
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Metal GPU: %s", g.Name())
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return g
}

// TestMetalStats: weights the GPU maps in place add nothing to the CPU's
// memory; copies and scratch buffers are counted.
func TestMetalStats(t *testing.T) {
	g := realGPU(t)
	if g == nil {
		t.Skip("no Metal GPU")
	}
	st := g.Stats()
	if st.ScratchBytes <= 0 || g.ResidentBytes() != st.CopiedBytes+st.ScratchBytes {
		t.Errorf("after the self-test: %+v, resident %d", st, g.ResidentBytes())
	}
	t.Logf("after the self-test: %+v", st)
}
