package model

import (
	"errors"
	"strings"
	"testing"
)

// TestParams compares Params with the tensors of a model built from the
// config.
func TestParams(t *testing.T) {
	for _, tied := range []bool{true, false} {
		c, err := ParseConfig([]byte(validConfig))
		if err != nil {
			t.Fatal(err)
		}
		c.TieWordEmbeddings = tied
		h, q, kv, in, v := c.HiddenSize, c.QDim(), c.KVDim(), c.IntermediateSize, c.VocabSize
		want := v*h + h + c.NumLayers*(2*h+q+in+q*h+2*kv*h+h*q+2*in*h+h*in)
		if !tied {
			want += v * h
		}
		if got := c.Params(); got != int64(want) {
			t.Errorf("tied %v: Params() = %d, want %d", tied, got, want)
		}
	}
}

func TestCheckMemory(t *testing.T) {
	if err := CheckMemory("loading x", 10, 0); err != nil {
		t.Errorf("no budget: got %v, want nil", err)
	}
	if err := CheckMemory("loading x", 10, 10); err != nil {
		t.Errorf("need = budget: got %v, want nil", err)
	}
	err := CheckMemory("loading x", 3<<30, 1<<30)
	if !errors.Is(err, ErrOverBudget) || !strings.Contains(err.Error(), "loading x needs about 3.0 GiB, the budget is 1.0 GiB") {
		t.Errorf("over: got %v, want ErrOverBudget naming both sizes", err)
	}
	// Estimates saturate instead of overflowing.
	c := Config{VocabSize: 1 << 40, HiddenSize: 1 << 40, NumLayers: 1 << 40, IntermediateSize: 1 << 40, NumHeads: 1 << 30, HeadDim: 1 << 30}
	if c.Params() <= 0 || c.ServeBytes() <= 0 || c.FloatBytes() <= 0 {
		t.Errorf("huge config: Params %d ServeBytes %d FloatBytes %d, want positive (saturated)", c.Params(), c.ServeBytes(), c.FloatBytes())
	}
}
