//go:build !amd64

package model

import "github.com/bitnet-mesh/bitnet-mesh/shared/half"

// widen converts IEEE half values to float32 (len(dst) >= len(src)).
func widen(dst []float32, src []uint16) {
	for i, h := range src {
		dst[i] = half.FromFloat16(h)
	}
}

// dot returns the float32 dot product of a and b (len(b) >= len(a)).
func dot(a, b []float32) float32 { return dotGeneric(a, b) }

// axpy adds a*x to y (len(x) >= len(y)).
func axpy(y []float32, a float32, x []float32) { axpyGeneric(y, a, x) }

// dotRows sets out[j] = dot(q, k[j*stride:][:len(q)]) for j < len(out).
func dotRows(out, q, k []float32, stride int) { dotRowsGeneric(out, q, k, stride) }

// accumRows sets out = sum over j < len(p) of p[j] * v[j*stride:][:len(out)].
func accumRows(out, p, v []float32, stride int) { accumRowsGeneric(out, p, v, stride) }

// halfRows reports whether dotRowsHalf and accumRowsHalf read an fp16 KV
// cache in place; off amd64 attention widens the cache instead.
func halfRows(int) bool { return false }

// dotRowsHalf is dotRows over half-precision k (unused where halfRows is false).
func dotRowsHalf(out, q []float32, k []uint16, stride int) {
	row := make([]float32, len(q))
	for j := range out {
		widen(row, k[j*stride:j*stride+len(q)])
		out[j] = dotGeneric(q, row)
	}
}

// accumRowsHalf is accumRows over half-precision v (unused where halfRows is false).
func accumRowsHalf(out, p []float32, v []uint16, stride int) {
	row := make([]float32, len(out))
	clear(out)
	for j, w := range p {
		widen(row, v[j*stride:j*stride+len(out)])
		axpyGeneric(out, w, row)
	}
}
