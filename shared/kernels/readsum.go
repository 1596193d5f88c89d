package kernels

import (
	"encoding/binary"
	"sync"
	"time"
)

// ReadSum returns the sum of b read as little-endian uint64 words (a short
// tail as one zero-padded word). On amd64 it streams with the widest SIMD
// loads the CPU has, so timing it over a buffer far larger than the caches
// measures the machine's memory read bandwidth honestly. With prefetch it
// also issues software prefetches ahead of the loads (some CPUs' hardware
// prefetchers stop at page boundaries); a probe should take the faster.
func ReadSum(b []byte, prefetch bool) uint64 {
	n, s := readSumSIMD(b, prefetch) // n bytes consumed, summing to s
	return s + readSumGeneric(b[n:])
}

// readSumGeneric sums b as uint64 words in Go.
func readSumGeneric(b []byte) uint64 {
	var s0, s1, s2, s3 uint64
	for len(b) >= 32 {
		s0 += binary.LittleEndian.Uint64(b)
		s1 += binary.LittleEndian.Uint64(b[8:])
		s2 += binary.LittleEndian.Uint64(b[16:])
		s3 += binary.LittleEndian.Uint64(b[24:])
		b = b[32:]
	}
	for len(b) >= 8 {
		s0 += binary.LittleEndian.Uint64(b)
		b = b[8:]
	}
	if len(b) > 0 {
		var t [8]byte
		copy(t[:], b)
		s0 += binary.LittleEndian.Uint64(t[:])
	}
	return s0 + s1 + s2 + s3
}

// ReadBandwidth streams a buffer of size bytes (far larger than the
// caches: 256 MiB is a good probe) with threads goroutines, each over its
// own part, and returns the best GB/s of reps passes with and without
// software prefetch.
func ReadBandwidth(size, threads, reps int) float64 {
	threads, reps = max(threads, 1), max(reps, 1)
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte(i)
	}
	part := len(buf) / threads &^ 255
	if part == 0 {
		return 0
	}
	best := 0.0
	sums := make([]uint64, threads) // kept so the reads are not dead code
	for range reps {
		for _, pf := range []bool{false, true} {
			var wg sync.WaitGroup
			start := time.Now()
			for t := range threads {
				wg.Go(func() { sums[t] = ReadSum(buf[t*part:(t+1)*part], pf) })
			}
			wg.Wait()
			best = max(best, float64(part*threads)/time.Since(start).Seconds()/1e9)
		}
	}
	return best
}
