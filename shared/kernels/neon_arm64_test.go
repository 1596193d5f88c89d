package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// These tests run natively on arm64 and under qemu-aarch64 in CI
// (CGO_ENABLED=0 GOARCH=arm64 go test -exec qemu-aarch64 ./shared/kernels/).
// They call both NEON variants directly, whatever the CPU reports; qemu's
// default CPU model implements dotprod.

// neonVariantCase is one implementation of Path NEON.
type neonVariantCase struct {
	name string
	im   impl
}

// neonVariants returns the plain variant, and the SDOT one when the CPU has
// dotprod (TestNEONIsSupported logs which).
func neonVariants() []neonVariantCase {
	v := []neonVariantCase{{"plain", neonImpl(false)}}
	if hasSDOT() {
		v = append(v, neonVariantCase{"sdot", neonImpl(true)})
	}
	return v
}

// fill kinds for weights and activations.
const (
	fillRandom = iota
	fillZero
	fillPlus
	fillMinus
	fillMax // activations 127
	fillMin // activations -128
)

func testTernary(rng *rand.Rand, rows, cols, kind int) *ternary.Matrix {
	v := make([]int8, rows*cols)
	for i := range v {
		switch kind {
		case fillRandom:
			v[i] = int8(rng.IntN(3)) - 1
		case fillPlus:
			v[i] = 1
		case fillMinus:
			v[i] = -1
		}
	}
	// Mix in the special rows too: all zero, all +1, all -1.
	if kind == fillRandom && rows >= 4 {
		for c := range cols {
			v[cols+c], v[2*cols+c], v[3*cols+c] = 0, 1, -1
		}
	}
	m, err := ternary.Pack(rows, cols, v, 0.75+rng.Float32())
	if err != nil {
		panic(err)
	}
	return m
}

func testActivations(rng *rand.Rand, n, k, kind int) *Activations {
	a := NewActivations(n, k)
	for t := range n {
		var sum int32
		for i := range k {
			var q int8
			switch kind {
			case fillMax:
				q = 127
			case fillMin:
				q = -128
			default:
				q = int8(rng.IntN(256) - 128)
				if t == 1 { // one token of extremes only
					q = []int8{-128, 127}[rng.IntN(2)]
				}
			}
			a.Q[t*a.Stride+i] = q
			sum += int32(q)
		}
		a.Sum[t] = sum
		a.Scale[t] = 0.01 + 100*rng.Float32()
	}
	return a
}

func testInt8(rng *rand.Rand, rows, cols, kind int) *Int8Matrix {
	stride := ternary.PaddedCols(cols)
	m := &Int8Matrix{Rows: rows, Cols: cols, Stride: stride, Data: make([]int8, rows*stride), Scales: make([]float32, rows)}
	for r := range rows {
		m.Scales[r] = 1e-3 + rng.Float32()
		for c := range cols {
			v := int8(rng.IntN(256) - 128)
			switch {
			case kind == fillMin || r == 1:
				v = -128
			case kind == fillMax || r == 2:
				v = 127
			}
			m.Data[r*stride+c] = v
		}
	}
	return m
}

// sameBits reports the first index where got and want differ bitwise.
func sameBits(got, want []float32) (int, bool) {
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			return i, false
		}
	}
	return 0, true
}

type neonCase struct{ rows, cols, n, wKind, aKind int }

func neonCases() []neonCase {
	cs := []neonCase{
		{1, 1, 1, fillRandom, fillRandom},
		{4, 128, 1, fillRandom, fillRandom},
		{5, 256, 4, fillRandom, fillRandom},
		{7, 300, 5, fillRandom, fillRandom},
		{13, 513, 9, fillRandom, fillRandom},
		{33, 2560, 3, fillRandom, fillRandom},
		{70, 256, 2, fillRandom, fillRandom},   // more than gemvBlocks blocks of 4 rows
		{102, 2048, 5, fillRandom, fillRandom}, // several GEMM row panels
		{8, 1000, 8, fillPlus, fillMin},
		{8, 1000, 8, fillMinus, fillMin},
		{8, 1000, 8, fillPlus, fillMax},
		{6, 777, 6, fillMinus, fillMax},
		{9, 256, 5, fillZero, fillRandom},
	}
	if !testing.Short() {
		cs = append(cs, neonCase{300, 20000, 1, fillRandom, fillRandom}, neonCase{19, 6912, 7, fillRandom, fillRandom})
	}
	return cs
}

func TestNEONMatMulMatchesGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range neonCases() {
		w := testTernary(rng, c.rows, c.cols, c.wKind)
		a := testActivations(rng, c.n, c.cols, c.aKind)
		want := make([]float32, c.n*c.rows)
		matMulGeneric(want, w, a, 0, c.rows)
		for _, v := range neonVariants() {
			// Whole range, and a split at an odd row as the engine's chunks may do.
			for _, cut := range []int{c.rows, c.rows / 3} {
				t.Run(fmt.Sprintf("%s/%dx%d/n=%d/w%d/a%d/cut=%d", v.name, c.rows, c.cols, c.n, c.wKind, c.aKind, cut), func(t *testing.T) {
					got := make([]float32, len(want))
					v.im.matMul(got, w, a, 0, cut)
					v.im.matMul(got, w, a, cut, c.rows)
					if i, ok := sameBits(got, want); !ok {
						t.Fatalf("y[%d] (token %d row %d): got %v, want %v", i, i/c.rows, i%c.rows, got[i], want[i])
					}
				})
			}
		}
	}
}

func TestNEONMatMulInt8MatchesGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range neonCases() {
		w := testInt8(rng, c.rows, c.cols, c.aKind)
		a := testActivations(rng, c.n, c.cols, c.aKind)
		want := make([]float32, c.n*c.rows)
		matMulInt8Generic(want, w, a, 0, c.rows)
		for _, v := range neonVariants() {
			for _, cut := range []int{c.rows, c.rows / 3} {
				t.Run(fmt.Sprintf("%s/%dx%d/n=%d/a%d/cut=%d", v.name, c.rows, c.cols, c.n, c.aKind, cut), func(t *testing.T) {
					got := make([]float32, len(want))
					v.im.matMulInt8(got, w, a, 0, cut)
					v.im.matMulInt8(got, w, a, cut, c.rows)
					if i, ok := sameBits(got, want); !ok {
						t.Fatalf("y[%d] (token %d row %d): got %v, want %v", i, i/c.rows, i%c.rows, got[i], want[i])
					}
				})
			}
		}
	}
}

// TestNEONDotsExact checks the raw int32 kernels, where a lane or operand
// mix-up cannot hide behind the float scaling.
func TestNEONDotsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const rows, cols, n = 4, 512, 4
	w := testTernary(rng, rows, cols, fillRandom)
	a := testActivations(rng, n, cols, fillRandom)
	groups := a.Stride / ternary.GroupSize
	want := func(r, tok int) int32 {
		return dotGeneric(w.Codes[r*w.Stride:(r+1)*w.Stride], a.Q[tok*a.Stride:(tok+1)*a.Stride])
	}
	var o4 [4]int32
	var o16 [16]int32
	for _, sdot := range []bool{false, true} {
		if sdot && !hasSDOT() {
			continue
		}
		t4x1, t1x1 := tern4x1NEON, tern1x1NEON
		if !sdot {
			tern4x2NEON(&w.Codes[0], w.Stride, &a.Q[0], a.Stride, groups, &o16)
			for tok := range 2 {
				for r := range rows {
					if got := o16[4*tok+r]; got != want(r, tok) {
						t.Errorf("tern4x2NEON row %d token %d: got %d, want %d", r, tok, got, want(r, tok))
					}
				}
			}
		}
		if sdot {
			t4x1, t1x1 = tern4x1SDOT, tern1x1SDOT
			tern4x4SDOT(&w.Codes[0], w.Stride, &a.Q[0], a.Stride, groups, &o16)
			for tok := range n {
				for r := range rows {
					if got := o16[4*tok+r]; got != want(r, tok) {
						t.Errorf("tern4x4SDOT row %d token %d: got %d, want %d", r, tok, got, want(r, tok))
					}
				}
			}
		}
		for tok := range n {
			t4x1(&w.Codes[0], w.Stride, &a.Q[tok*a.Stride], groups, 1, &o4[0])
			for r := range rows {
				if o4[r] != want(r, tok) {
					t.Errorf("sdot=%t 4x1 row %d token %d: got %d, want %d", sdot, r, tok, o4[r], want(r, tok))
				}
				if got := t1x1(&w.Codes[r*w.Stride], &a.Q[tok*a.Stride], groups); got != want(r, tok) {
					t.Errorf("sdot=%t 1x1 row %d token %d: got %d, want %d", sdot, r, tok, got, want(r, tok))
				}
			}
		}
	}
}

func TestNEONIsSupported(t *testing.T) {
	t.Logf("dotprod (SDOT variant tested): %t", hasSDOT())
	if !IsSupported(NEON) || Best() != NEON {
		t.Fatalf("got Supported() = %v, Best() = %v, want NEON supported and best", Supported(), Best())
	}
}

// TestNEONLongRowFallback lowers the SDOT GEMV row limit so that rows longer
// than it take the plain kernels, as rows over 4M weights do in production.
func TestNEONLongRowFallback(t *testing.T) {
	if !hasSDOT() {
		t.Skip("CPU lacks dotprod")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	w := testTernary(rng, 6, 1024, fillRandom)
	a := testActivations(rng, 2, 1024, fillRandom)
	want := make([]float32, 2*6)
	matMulGeneric(want, w, a, 0, 6)
	for _, limit := range []int{1, 7, 8} {
		got := make([]float32, len(want))
		neonVariant(true, limit).matMul(got, w, a, 0, 6)
		if i, ok := sameBits(got, want); !ok {
			t.Errorf("limit %d groups: y[%d]: got %v, want %v", limit, i, got[i], want[i])
		}
	}
}

// TestNEONInt8DotsExact checks the raw int32 int8 kernels.
func TestNEONInt8DotsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const rows, cols, n = 4, 700, 4
	w := testInt8(rng, rows, cols, fillRandom)
	a := testActivations(rng, n, cols, fillRandom)
	want := func(r, tok int) int32 {
		var s int32
		for i := range a.Stride {
			s += int32(w.Data[r*w.Stride+i]) * int32(a.Q[tok*a.Stride+i])
		}
		return s
	}
	steps := a.Stride / int8Step
	for _, sdot := range []bool{false, true} {
		if sdot && !hasSDOT() {
			continue
		}
		k := neonVariant(sdot, maxMaskGroups)
		if k.i4x4 != nil {
			var o16 [16]int32
			k.i4x4(&w.Data[0], w.Stride, &a.Q[0], a.Stride, a.Stride/32, &o16)
			for tok := range n {
				for r := range rows {
					if got := o16[4*tok+r]; got != want(r, tok) {
						t.Errorf("sdot=%t 4x4 row %d token %d: got %d, want %d", sdot, r, tok, got, want(r, tok))
					}
				}
			}
		}
		var o4 [4]int32
		for tok := range n {
			k.i4x1(&w.Data[0], w.Stride, &a.Q[tok*a.Stride], steps, 1, &o4[0])
			for r := range rows {
				if o4[r] != want(r, tok) {
					t.Errorf("sdot=%t 4x1 row %d token %d: got %d, want %d", sdot, r, tok, o4[r], want(r, tok))
				}
				if got := k.i1x1(&w.Data[r*w.Stride], &a.Q[tok*a.Stride], steps); got != want(r, tok) {
					t.Errorf("sdot=%t 1x1 row %d token %d: got %d, want %d", sdot, r, tok, got, want(r, tok))
				}
			}
		}
	}
}

// TestNEONRandomShapes compares both variants with generic on random shapes
// and random row ranges, as the engine's chunks cut them.
func TestNEONRandomShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	iters := 40
	if testing.Short() {
		iters = 10
	}
	for it := range iters {
		rows, cols, n := 1+rng.IntN(40), 1+rng.IntN(1500), 1+rng.IntN(9)
		r0 := rng.IntN(rows)
		r1 := r0 + 1 + rng.IntN(rows-r0)
		w := testTernary(rng, rows, cols, fillRandom)
		w8 := testInt8(rng, rows, cols, fillRandom)
		a := testActivations(rng, n, cols, fillRandom)
		want := make([]float32, n*rows)
		want8 := make([]float32, n*rows)
		matMulGeneric(want, w, a, r0, r1)
		matMulInt8Generic(want8, w8, a, r0, r1)
		for _, v := range neonVariants() {
			got := make([]float32, n*rows)
			v.im.matMul(got, w, a, r0, r1)
			if i, ok := sameBits(got, want); !ok {
				t.Fatalf("#%d %s ternary %dx%d n=%d rows [%d,%d): y[%d]: got %v, want %v", it, v.name, rows, cols, n, r0, r1, i, got[i], want[i])
			}
			got8 := make([]float32, n*rows)
			v.im.matMulInt8(got8, w8, a, r0, r1)
			if i, ok := sameBits(got8, want8); !ok {
				t.Fatalf("#%d %s int8 %dx%d n=%d rows [%d,%d): y[%d]: got %v, want %v", it, v.name, rows, cols, n, r0, r1, i, got8[i], want8[i])
			}
		}
	}
}
