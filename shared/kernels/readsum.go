package kernels

import "encoding/binary"

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
