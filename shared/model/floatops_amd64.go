package model

import (
	"golang.org/x/sys/cpu"

	"github.com/bitnet-mesh/bitnet-mesh/shared/half"
)

// CPU features of the assembly float loops (attention, the float32 head and
// the fp16 KV cache); read-only after package initialisation.
var (
	hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	hasF16C    = cpu.X86.HasAVX && cpu.X86.HasF16C
)

//go:noescape
func f16ToF32F16C(dst *float32, src *uint16, n int)

// widen converts IEEE half values to float32 (len(dst) >= len(src)).
func widen(dst []float32, src []uint16) {
	n := 0
	if hasF16C {
		n = len(src) &^ 7
		if n > 0 {
			f16ToF32F16C(&dst[0], &src[0], n)
		}
	}
	for i, h := range src[n:] {
		dst[n+i] = half.FromFloat16(h)
	}
}

//go:noescape
func dotAVX2(a, b *float32, n int) float32

//go:noescape
func axpyAVX2(y, x *float32, n int, a float32)

// dot returns the float32 dot product of a and b (len(b) >= len(a)).
func dot(a, b []float32) float32 {
	if hasAVX2FMA && len(a) > 0 {
		b = b[:len(a)]
		return dotAVX2(&a[0], &b[0], len(a))
	}
	return dotGeneric(a, b)
}

// axpy adds a*x to y (len(x) >= len(y)).
func axpy(y []float32, a float32, x []float32) {
	if hasAVX2FMA && len(y) > 0 {
		x = x[:len(y)]
		axpyAVX2(&y[0], &x[0], len(y), a)
		return
	}
	axpyGeneric(y, a, x)
}

//go:noescape
func dotRowsAVX2(out, q, k *float32, n, hd, stride int)

//go:noescape
func accumRowsAVX2(out, p, v *float32, n, hd, stride int)

// dotRows sets out[j] = dot(q, k[j*stride:][:len(q)]) for j < len(out).
func dotRows(out, q, k []float32, stride int) {
	n, hd := len(out), len(q)
	if n == 0 {
		return
	}
	k = k[:(n-1)*stride+hd] // bounds for the assembly
	if hasAVX2FMA && hd%8 == 0 && hd > 0 {
		dotRowsAVX2(&out[0], &q[0], &k[0], n, hd, stride)
		return
	}
	dotRowsGeneric(out, q, k, stride)
}

// accumRows sets out = sum over j < len(p) of p[j] * v[j*stride:][:len(out)].
func accumRows(out, p, v []float32, stride int) {
	n, hd := len(p), len(out)
	if n == 0 {
		clear(out)
		return
	}
	v = v[:(n-1)*stride+hd] // bounds for the assembly
	if hasAVX2FMA && hd%8 == 0 && hd > 0 {
		accumRowsAVX2(&out[0], &p[0], &v[0], n, hd, stride)
		return
	}
	accumRowsGeneric(out, p, v, stride)
}

//go:noescape
func dotRowsF16(out, q *float32, k *uint16, n, hd, stride int)

//go:noescape
func accumRowsF16(out, p *float32, v *uint16, n, hd, stride int)

// halfRows reports whether dotRowsHalf and accumRowsHalf read an fp16 KV
// cache in place for head size hd, so attention need not widen it first.
func halfRows(hd int) bool { return hasAVX2FMA && hasF16C && hd > 0 && hd%8 == 0 }

// dotRowsHalf is dotRows over half-precision k, with the same results as
// widening k first; halfRows(len(q)) must hold.
func dotRowsHalf(out, q []float32, k []uint16, stride int) {
	n, hd := len(out), len(q)
	if n == 0 {
		return
	}
	k = k[:(n-1)*stride+hd] // bounds for the assembly
	dotRowsF16(&out[0], &q[0], &k[0], n, hd, stride)
}

// accumRowsHalf is accumRows over half-precision v, with the same results as
// widening v first; halfRows(len(out)) must hold.
func accumRowsHalf(out, p []float32, v []uint16, stride int) {
	n, hd := len(p), len(out)
	if n == 0 {
		clear(out)
		return
	}
	v = v[:(n-1)*stride+hd] // bounds for the assembly
	accumRowsF16(&out[0], &p[0], &v[0], n, hd, stride)
}
