package train

import (
	"context"
	"slices"
	"testing"
)

// TestSequenceOrder checks that SequenceOrder lists exactly the sequences a
// Trainer reads, across epoch boundaries and with accumulation.
func TestSequenceOrder(t *testing.T) {
	path, _ := tokenFile(t)
	o := smallOptions()
	o.Accum, o.Steps, o.Batch, o.Seq = 2, 40, 3, 64
	tr := newTestTrainer(t, path, smallConfig(), o)
	n := tr.data.TrainSeqs
	order, err := SequenceOrder(o.Seed, n, o.Steps, o.Batch, o.Accum)
	if err != nil {
		t.Fatal(err)
	}
	if o.Steps*o.Batch*o.Accum <= n {
		t.Fatalf("test needs more than one epoch: %d draws of %d sequences", o.Steps*o.Batch*o.Accum, n)
	}
	in, tg := make([]int, o.Seq), make([]int, o.Seq)
	for s, row := range order {
		if len(row) != o.Batch*o.Accum {
			t.Fatalf("step %d: got %d indices, want %d", s+1, len(row), o.Batch*o.Accum)
		}
		if _, err := tr.Step(context.Background()); err != nil {
			t.Fatal(err)
		}
		// tr.inputs holds the step's last micro-batch.
		for b, i := range row[len(row)-o.Batch:] {
			if err := tr.data.read(i, in, tg, tr.cfg.VocabSize); err != nil {
				t.Fatal(err)
			}
			if got := tr.inputs[b*o.Seq : (b+1)*o.Seq]; !slices.Equal(got, in) {
				t.Fatalf("step %d row %d: trainer read other tokens than sequence %d", s+1, b, i)
			}
		}
	}
	flat := slices.Concat(order...)
	first := slices.Clone(flat[:n])
	slices.Sort(first)
	for i, v := range first {
		if v != i {
			t.Fatalf("epoch 0 is not a permutation of %d sequences (sorted[%d] = %d)", n, i, v)
		}
	}
	for _, bad := range [][4]int{{0, 1, 1, 1}, {5, 0, 1, 1}, {5, 1, 0, 1}, {5, 1, 1, -1}, {5, 1 << 20, 1 << 10, 1 << 10}} {
		if _, err := SequenceOrder(1, bad[0], bad[1], bad[2], bad[3]); err == nil {
			t.Errorf("SequenceOrder(1, %v): got nil error", bad)
		}
	}
}
