package train

import "fmt"

// dataCursor walks the training sequences: epoch after epoch, each in the
// order permutation(seed, epoch). (epoch, pos) is all a checkpoint keeps.
type dataCursor struct {
	epoch, pos int   // next training sequence: perm(epoch)[pos]
	perm       []int // permutation of permEpoch
	permEpoch  int   // -1 before the first draw
}

// peek returns the index of the next training sequence of n (moving to the
// next epoch when this one is done); advance consumes it.
func (c *dataCursor) peek(seed uint64, n int) int {
	if c.pos >= n {
		c.epoch, c.pos = c.epoch+1, 0
	}
	if c.permEpoch != c.epoch {
		c.perm, c.permEpoch = permutation(seed, c.epoch, n), c.epoch
	}
	return c.perm[c.pos]
}

func (c *dataCursor) advance() { c.pos++ }

// SequenceOrder returns the training sequence indices (into the first
// trainSeqs sequences of a Dataset) that a fresh Trainer with this seed
// reads, per optimiser step: steps rows of accum*batch indices, micro-batch
// after micro-batch. It lets another implementation replay a run exactly.
func SequenceOrder(seed uint64, trainSeqs, steps, batch, accum int) ([][]int, error) {
	if trainSeqs <= 0 || steps <= 0 || batch <= 0 || accum <= 0 {
		return nil, fmt.Errorf("%w: train sequences %d, steps %d, batch %d, accum %d must be positive", ErrOptions, trainSeqs, steps, batch, accum)
	}
	if int64(steps)*int64(batch)*int64(accum) > 1<<26 {
		return nil, fmt.Errorf("%w: steps*batch*accum = %d*%d*%d exceeds %d sequences", ErrOptions, steps, batch, accum, 1<<26)
	}
	c := dataCursor{permEpoch: -1}
	out := make([][]int, steps)
	for s := range out {
		row := make([]int, batch*accum)
		for k := range row {
			row[k] = c.peek(seed, trainSeqs)
			c.advance()
		}
		out[s] = row
	}
	return out, nil
}
