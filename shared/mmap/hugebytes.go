package mmap

import "unsafe"

// HugeBytes returns n zero bytes that start on a 2 MiB boundary and are
// marked for transparent huge pages (Advise) before anything touches them,
// so that their pages fault in huge where the OS has them: buffers that
// time the streaming of weights, which the model keeps on huge pages too
// (a loop shape that streams fastest from 4 KiB pages can lose on huge ones).
func HugeBytes(n int) []byte {
	const huge = 2 << 20
	buf := make([]byte, n+huge)
	off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(buf))) & (huge - 1))
	b := buf[off : off+n : off+n]
	Advise(b)
	return b
}
