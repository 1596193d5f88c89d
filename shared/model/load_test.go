package model

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
)

// TestLoadGGUFPath checks that Load dispatches .gguf files (any case) to
// ReadGGUF and that the loaded model computes what the weights compute.
func TestLoadGGUFPath(t *testing.T) {
	c := tinyConfig()
	c.HiddenSize, c.IntermediateSize, c.HeadDim = 256, 256, 64
	w := randomWeights(t, c, 31)
	path := filepath.Join(t.TempDir(), "tiny.GGUF")
	if err := WriteGGUF(path, w, nil, WithFloatType(gguf.F32), WithScaleTensors(true)); err != nil {
		t.Fatal(err)
	}
	ids := []int{0, 10, 30, 45, 2}
	var logits [2][]float32
	for i := range logits {
		var m *Model
		var err error
		if i == 0 {
			m, err = New(w, nil)
		} else {
			m, err = Load(path)
		}
		if err != nil {
			t.Fatal(err)
		}
		st := []Step{{Seq: m.NewSequence(), Tokens: ids, AllLogits: true}}
		if err := m.Forward(context.Background(), st); err != nil {
			t.Fatal(err)
		}
		logits[i] = st[0].Logits
		m.Close()
	}
	if d := maxAbsDiff(logits[0], logits[1]); d != 0 {
		t.Errorf("logits of the GGUF model differ by %g", d)
	}
}
