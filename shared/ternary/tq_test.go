package ternary

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/half"
)

// block returns one 256-weight row with weight f(e) for element e.
func block(t *testing.T, f func(e int) int8, scale float32) *Matrix {
	t.Helper()
	v := make([]int8, BlockSize)
	for e := range v {
		v[e] = f(e)
	}
	m, err := Pack(1, BlockSize, v, scale)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func rep(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

func withD(p []byte, d uint16) []byte { return binary.LittleEndian.AppendUint16(slices.Clone(p), d) }

func alternate(a, b byte, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = a
		if i%2 == 1 {
			p[i] = b
		}
	}
	return p
}

// TestKnownAnswers checks hand-computed block bytes.
func TestKnownAnswers(t *testing.T) {
	const one = 0x3c00 // fp16 1.0
	neg := func(int) int8 { return -1 }
	zero := func(int) int8 { return 0 }
	pos := func(int) int8 { return 1 }
	alt := func(e int) int8 { return int8(1 - 2*(e%2)) } // +1, -1, +1, ...
	tests := []struct {
		name     string
		f        func(int) int8
		tq2, tq1 []byte
	}{
		{"all -1", neg, withD(rep(0x00, 64), one), withD(rep(0x00, 52), one)},
		{"all 0", zero, withD(rep(0x55, 64), 0), withD(append(rep(0x80, 48), rep(0x7f, 4)...), 0)},
		{"all +1", pos, withD(rep(0xaa, 64), one), withD(append(rep(0xff, 48), rep(0xfd, 4)...), one)},
		{"alternating", alt, withD(alternate(0xaa, 0x00, 64), one), withD(append(alternate(0xff, 0x00, 48), alternate(0xfd, 0x00, 4)...), one)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := block(t, tc.f, 1)
			got2, err := m.EncodeTQ2_0()
			if err != nil || !bytes.Equal(got2, tc.tq2) {
				t.Fatalf("EncodeTQ2_0 = %x, %v; want %x", got2, err, tc.tq2)
			}
			got1, err := m.EncodeTQ1_0()
			if err != nil || !bytes.Equal(got1, tc.tq1) {
				t.Fatalf("EncodeTQ1_0 = %x, %v; want %x", got1, err, tc.tq1)
			}
			want := m
			if allZero(m.Codes) {
				cp := *m
				cp.Scale = 0 // d = 0 carries no scale
				want = &cp
			}
			d2, err := DecodeTQ2_0(tc.tq2, 1, BlockSize)
			if err != nil {
				t.Fatalf("DecodeTQ2_0: %v", err)
			}
			sameMatrix(t, "DecodeTQ2_0", d2, want)
			d1, err := DecodeTQ1_0(tc.tq1, 1, BlockSize)
			if err != nil {
				t.Fatalf("DecodeTQ1_0: %v", err)
			}
			sameMatrix(t, "DecodeTQ1_0", d1, want)
		})
	}
	// Weight (e mod 3) - 1: qs[0] holds elements 0, 32, 64, 96 (and 128 in
	// TQ1_0), i.e. trits 0,2,1,0,2: q = 65, ceil(65*256/243) = 69.
	m := block(t, func(e int) int8 { return int8(e%3) - 1 }, 1)
	b2, _ := m.EncodeTQ2_0()
	b1, _ := m.EncodeTQ1_0()
	if b2[0] != 0x18 || b1[0] != 69 {
		t.Fatalf("mod-3 pattern: TQ2_0 qs[0] = %#x, TQ1_0 qs[0] = %d; want 0x18, 69", b2[0], b1[0])
	}
}

// TestBase3Bytes checks the TQ1_0 byte code exhaustively: every q < 243
// survives encode/decode, and exactly 13 byte values are not canonical.
func TestBase3Bytes(t *testing.T) {
	tb := tq1()
	for q := 0; q < 243; q++ {
		e := tb.dec[tb.enc[q]]
		got := int(e.lo&3)*81 + int(e.lo>>2&3)*27 + int(e.lo>>4&3)*9 + int(e.lo>>6&3)*3 + int(e.t4)
		if got != q || e.bad&1 != 0 {
			t.Fatalf("q=%d: byte %d decodes to %d (bad=%d)", q, tb.enc[q], got, e.bad)
		}
	}
	var nqs, nqh int
	for b := range tb.dec {
		if tb.dec[b].bad&1 != 0 {
			nqs++
		}
		if tb.dec[b].bad&2 != 0 {
			nqh++
		}
	}
	if nqs != 256-243 || nqh != 256-81 {
		t.Fatalf("got %d non-canonical qs bytes and %d qh bytes, want 13 and 175", nqs, nqh)
	}
}

// TestAgainstReference compares the codecs with the float algorithms of
// llama.cpp on random matrices.
func TestAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	scales := []float32{1, 0.75, 0.0123, 2.4e-3, 1.555}
	for i := 0; i < 12; i++ {
		rows, cols := 1+rng.IntN(9), BlockSize*(1+rng.IntN(4))
		s := scales[i%len(scales)]
		m, _ := randMatrix(t, rng, rows, cols, s)
		if i%4 == 0 { // make some all-zero blocks
			for r := 0; r < rows; r++ {
				fill55(m.Codes[r*m.Stride : r*m.Stride+64])
			}
		}
		x := dense(m)
		for _, c := range []struct {
			name   string
			enc    func() ([]byte, error)
			dec    func([]byte, int, int) (*Matrix, error)
			refQ   func([]float32) []byte
			refDeq func([]byte) []float32
		}{
			{"TQ2_0", m.EncodeTQ2_0, DecodeTQ2_0, refQuantizeTQ2, refDequantTQ2},
			{"TQ1_0", m.EncodeTQ1_0, DecodeTQ1_0, refQuantizeTQ1, refDequantTQ1},
		} {
			got, err := c.enc()
			if err != nil {
				t.Fatalf("%s %dx%d: %v", c.name, rows, cols, err)
			}
			if want := c.refQ(x); !bytes.Equal(got, want) {
				t.Fatalf("%s %dx%d scale %v: bytes differ from llama.cpp's quantizer", c.name, rows, cols, s)
			}
			dm, err := c.dec(got, rows, cols)
			if err != nil {
				t.Fatalf("%s decode: %v", c.name, err)
			}
			if want := c.refDeq(got); !slices.Equal(dense(dm), want) {
				t.Fatalf("%s %dx%d: decoded values differ from llama.cpp's dequantizer", c.name, rows, cols)
			}
			if !bytes.Equal(dm.Codes, m.Codes) || dm.Scale != half.FromFloat16(half.ToFloat16(s)) {
				t.Fatalf("%s %dx%d: round trip changed codes or scale (%v -> %v)", c.name, rows, cols, s, dm.Scale)
			}
		}
	}
}

// TestChainRoundTrip runs HF -> Matrix -> TQ2_0 -> Matrix -> TQ1_0 -> Matrix -> HF.
func TestChainRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, sh := range [][2]int{{4, 256}, {8, 512}, {12, 2560}, {40, 768}} {
		m, v := randMatrix(t, rng, sh[0], sh[1], 0.375)
		hf := hfPackRef(v, sh[0], sh[1])
		a, err := FromHFPacked(hf, sh[0], sh[1], 0.375)
		if err != nil {
			t.Fatal(err)
		}
		sameMatrix(t, "from HF", a, m)
		b2, err := a.EncodeTQ2_0()
		if err != nil {
			t.Fatal(err)
		}
		b, err := DecodeTQ2_0(b2, sh[0], sh[1])
		if err != nil {
			t.Fatal(err)
		}
		sameMatrix(t, "via TQ2_0", b, m)
		b1, err := b.EncodeTQ1_0()
		if err != nil {
			t.Fatal(err)
		}
		c, err := DecodeTQ1_0(b1, sh[0], sh[1])
		if err != nil {
			t.Fatal(err)
		}
		sameMatrix(t, "via TQ1_0", c, m)
		back, err := c.HFPacked()
		if err != nil || !bytes.Equal(back, hf) {
			t.Fatalf("back to HF: %v (equal %v)", err, bytes.Equal(back, hf))
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	m := block(t, func(e int) int8 { return int8(e%3) - 1 }, 1)
	tq2, _ := m.EncodeTQ2_0()
	tq1, _ := m.EncodeTQ1_0()
	two2 := append(slices.Clone(tq2), tq2...)
	two1 := append(slices.Clone(tq1), tq1...)
	binary.LittleEndian.PutUint16(two2[TQ2_0Bytes+64:], half.ToFloat16(0.5))
	binary.LittleEndian.PutUint16(two1[TQ1_0Bytes+52:], half.ToFloat16(0.5))
	code3 := slices.Clone(tq2)
	code3[10] |= 0x30
	zeroD2 := slices.Clone(tq2)
	binary.LittleEndian.PutUint16(zeroD2[64:], 0x8000)
	inf2 := slices.Clone(tq2)
	binary.LittleEndian.PutUint16(inf2[64:], 0x7c00)
	// Byte 1 is never produced (ceil(q*256/243) goes 0, 2, 3, ...); byte 2
	// (q = 1: trits 0,0,0,0,1) is a valid qs byte but not a valid qh byte,
	// whose fifth trit is always 0.
	qs2 := slices.Clone(tq1)
	qs2[40] = 1
	qh1 := slices.Clone(tq1)
	qh1[49] = 2
	zeroD1 := slices.Clone(tq1)
	binary.LittleEndian.PutUint16(zeroD1[52:], 0)
	tests := []struct {
		name       string
		dec        func([]byte, int, int) (*Matrix, error)
		data       []byte
		rows, cols int
		want       string
	}{
		{"tq2 truncated", DecodeTQ2_0, tq2[:65], 1, 256, "buffer has 65 bytes"},
		{"tq2 oversized", DecodeTQ2_0, append(slices.Clone(tq2), 0), 1, 256, "buffer has 67 bytes"},
		{"tq2 cols", DecodeTQ2_0, tq2, 1, 255, "not a multiple of 256"},
		{"tq2 rows", DecodeTQ2_0, tq2, 0, 256, "positive"},
		{"tq2 huge", DecodeTQ2_0, tq2, 1 << 60, 1 << 40, "buffer has"},
		{"tq2 code 3", DecodeTQ2_0, code3, 1, 256, "row 0 block 0 qs byte 10 field 2 holds invalid code 3"},
		{"tq2 scales differ", DecodeTQ2_0, two2, 1, 512, "row 0 block 1 has scale 0.5 but row 0 block 0 has 1"},
		{"tq2 zero d", DecodeTQ2_0, zeroD2, 1, 256, "scale 0 but nonzero weights"},
		{"tq2 inf d", DecodeTQ2_0, inf2, 1, 256, "non-finite scale"},
		{"tq1 truncated", DecodeTQ1_0, tq1[:53], 1, 256, "buffer has 53 bytes"},
		{"tq1 oversized", DecodeTQ1_0, append(slices.Clone(tq1), 0), 1, 256, "buffer has 55 bytes"},
		{"tq1 cols", DecodeTQ1_0, tq1, 1, 100, "not a multiple of 256"},
		{"tq1 qs", DecodeTQ1_0, qs2, 1, 256, "qs[40] = 1 is not a valid base-3 byte"},
		{"tq1 qh", DecodeTQ1_0, qh1, 1, 256, "qh[1] = 2 is not a valid base-3 byte"},
		{"tq1 scales differ", DecodeTQ1_0, two1, 2, 256, "row 1 block 0 has scale 0.5 but row 0 block 0 has 1"},
		{"tq1 zero d", DecodeTQ1_0, zeroD1, 1, 256, "scale 0 but nonzero weights"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := tc.dec(tc.data, tc.rows, tc.cols)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got (%v, %v), want error containing %q", m, err, tc.want)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	odd, _ := New(2, 300, 1)
	big := block(t, func(int) int8 { return 1 }, 1e6)
	tiny := block(t, func(int) int8 { return 1 }, 1e-9)
	bad := block(t, func(int) int8 { return 1 }, 1)
	bad.Codes[3] = 0xff
	short := block(t, func(int) int8 { return 1 }, 1)
	short.Codes = short.Codes[:10]
	tests := []struct {
		name string
		m    *Matrix
		want string
	}{
		{"cols", odd, "not a multiple of 256"},
		{"scale overflow", big, "not representable in fp16"},
		{"scale underflow", tiny, "rounds to 0"},
		{"code 3", bad, "invalid code 3 in row 0"},
		{"short codes", short, "code bytes"},
		{"nil", nil, "nil matrix"},
	}
	for _, tc := range tests {
		for name, enc := range map[string]func() ([]byte, error){"TQ2_0": tc.m.EncodeTQ2_0, "TQ1_0": tc.m.EncodeTQ1_0} {
			if _, err := enc(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s %s: got %v, want error containing %q", name, tc.name, err, tc.want)
			}
		}
	}
	// An all-zero matrix encodes with any scale, even one fp16 cannot hold.
	z, _ := New(1, 256, 1e-9)
	if _, err := z.EncodeTQ1_0(); err != nil {
		t.Errorf("all-zero matrix with tiny scale: %v", err)
	}
}
