package metal_test

import (
	"strings"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/metal"
)

func TestSelfTest(t *testing.T) {
	for _, d := range devices(t) {
		if err := metal.SelfTest(d.gpu); err != nil {
			t.Errorf("%s: %v", d.name, err)
		}
	}
}

// faulty is a backend that computes one output wrong: the self-test must
// refuse it.
type faulty struct {
	metal.Backend
	kernel string
}

type flip struct {
	metal.Pending
	out metal.Binding
}

func (f flip) Wait() error {
	if err := f.Pending.Wait(); err != nil {
		return err
	}
	f.out.Buf.Bytes()[f.out.Offset] ^= 1 // the lowest bit of the first output
	return nil
}

func (f *faulty) Submit(ds []metal.Dispatch) (metal.Pending, error) {
	p, err := f.Backend.Submit(ds)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if d.Kernel == f.kernel {
			for _, b := range d.Buffers {
				if b.Write {
					return flip{p, b}, nil
				}
			}
		}
	}
	return p, nil
}

func TestSelfTestCatchesAWrongKernel(t *testing.T) {
	for _, k := range []string{"mv_ternary", "mm_ternary", "mv_int8", "mm_int8", "mv_int6", "mm_int6", "mv_int4", "mm_int4", "quantize_rows"} {
		t.Run(k, func(t *testing.T) {
			_, b := emulated(t) // closed by its own GPU
			err := metal.SelfTest(metal.New(&faulty{Backend: b, kernel: k}))
			if err == nil {
				t.Fatalf("self-test passed with a wrong %s", k)
			}
			kind := strings.TrimPrefix(strings.TrimPrefix(k, "mv_"), "mm_")
			if kind == "quantize_rows" {
				kind = "quantize"
			}
			if !strings.Contains(err.Error(), kind) {
				t.Errorf("got %v, want it to name %s", err, kind)
			}
		})
	}
}
