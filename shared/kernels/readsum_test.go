package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestReadSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, n := range []int{0, 1, 7, 8, 255, 256, 257, 1000, 4096, 70001} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		for _, pf := range []bool{false, true} {
			if got, want := ReadSum(b, pf), readSumGeneric(b); got != want {
				t.Errorf("ReadSum(%d bytes, %t) got %d, want %d", n, pf, got, want)
			}
		}
	}
}

func BenchmarkReadSum(b *testing.B) {
	buf := make([]byte, 256<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	for _, pf := range []bool{false, true} {
		b.Run(fmt.Sprintf("prefetch=%t", pf), func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				ReadSum(buf, pf)
			}
		})
	}
}
