package ternary

import (
	"fmt"
	"math"

	"github.com/bitnet-mesh/bitnet-mesh/shared/half"
)

// GGUF ternary block sizes in bytes (llama.cpp's block_tq2_0 and block_tq1_0).
const (
	// TQ2_0Bytes is one TQ2_0 block: qs[64] (2-bit codes) + fp16 d.
	TQ2_0Bytes = 66
	// TQ1_0Bytes is one TQ1_0 block: qs[48] (5 trits per byte) + qh[4]
	// (4 trits per byte) + fp16 d.
	TQ1_0Bytes = 54
)

// tqCheck validates a GGUF ternary tensor of rows x cols (ne1 x ne0) stored in
// n bytes of blockBytes-sized blocks and returns the blocks per row.
func tqCheck(n, rows, cols, blockBytes int, typ string) (int, error) {
	if rows <= 0 || cols <= 0 {
		return 0, fmt.Errorf("%w: %s rows=%d cols=%d must be positive", ErrShape, typ, rows, cols)
	}
	if cols%BlockSize != 0 {
		return 0, fmt.Errorf("%w: %s row length %d is not a multiple of %d", ErrShape, typ, cols, BlockSize)
	}
	bpr := cols / BlockSize
	if bpr > math.MaxInt/blockBytes || rows > math.MaxInt/(bpr*blockBytes) || rows*bpr*blockBytes != n {
		return 0, fmt.Errorf("%w: %s buffer has %d bytes, want rows*(cols/%d)*%d = %d*%d*%d", ErrShape, typ, n, BlockSize, blockBytes, rows, bpr, blockBytes)
	}
	return bpr, nil
}

// scaleSet tracks the one per-tensor scale that every block with a nonzero d
// must share (BitNet files have one scale per tensor).
type scaleSet struct {
	typ      string
	bits     uint16
	set      bool
	row, blk int
}

// add records block blk of row r with fp16 scale d; zero reports whether all
// its codes are weight 0 (called only when d is 0).
func (s *scaleSet) add(d uint16, r, blk int, zero func() bool) error {
	if d&0x7fff == 0 {
		if !zero() {
			return fmt.Errorf("ternary: %s row %d block %d has scale 0 but nonzero weights", s.typ, r, blk)
		}
		return nil
	}
	if d&0x7c00 == 0x7c00 {
		return fmt.Errorf("ternary: %s row %d block %d has non-finite scale %v", s.typ, r, blk, half.FromFloat16(d))
	}
	if !s.set {
		s.bits, s.set, s.row, s.blk = d, true, r, blk
		return nil
	}
	if d != s.bits {
		return fmt.Errorf("ternary: %s row %d block %d has scale %v but row %d block %d has %v: blocks with different scales are not supported (BitNet tensors have one scale)",
			s.typ, r, blk, half.FromFloat16(d), s.row, s.blk, half.FromFloat16(s.bits))
	}
	return nil
}

// scale returns the shared scale, 0 when every block was zero.
func (s *scaleSet) scale() float32 {
	if !s.set {
		return 0
	}
	return half.FromFloat16(s.bits)
}

// encodeScale returns the fp16 d that m's nonzero blocks carry.
func (m *Matrix) encodeScale(typ string) (uint16, error) {
	if err := m.checkShape(); err != nil {
		return 0, err
	}
	if m.Cols%BlockSize != 0 {
		return 0, fmt.Errorf("%w: %s row length %d is not a multiple of %d (GGUF requires it)", ErrShape, typ, m.Cols, BlockSize)
	}
	if err := m.checkCodes(); err != nil {
		return 0, err
	}
	d := half.ToFloat16(m.Scale)
	if d&0x7c00 == 0x7c00 {
		return 0, fmt.Errorf("ternary: %s scale %v is not representable in fp16", typ, m.Scale)
	}
	if d&0x7fff == 0 && !allZero(m.Codes) {
		return 0, fmt.Errorf("ternary: %s scale %v rounds to 0 in fp16 and would zero nonzero weights", typ, m.Scale)
	}
	return d, nil
}
