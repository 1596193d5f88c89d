package kernels

//go:noescape
func readSum512(p *byte, n int) uint64

//go:noescape
func readSum512PF(p *byte, n int) uint64

//go:noescape
func readSum256(p *byte, n int) uint64

// readSumSIMD sums the longest prefix of b that is a multiple of 256 bytes.
func readSumSIMD(b []byte, prefetch bool) (int, uint64) {
	n := len(b) &^ 255
	switch {
	case n == 0:
		return 0, 0
	case prefetch && cpu.avx512f:
		return n, readSum512PF(&b[0], n)
	case cpu.avx512f:
		return n, readSum512(&b[0], n)
	case cpu.avx2:
		return n, readSum256(&b[0], n)
	}
	return 0, 0
}
