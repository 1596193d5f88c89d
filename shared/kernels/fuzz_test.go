package kernels

import (
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// FuzzMatMulPaths builds a small product from the fuzz bytes (shape, codes,
// q) and checks every supported path and thread count against generic.
func FuzzMatMulPaths(f *testing.F) {
	f.Add(uint8(5), uint16(300), uint8(3), []byte{1, 2, 3, 250, 128, 127})
	f.Add(uint8(1), uint16(1), uint8(1), []byte{0x80})
	f.Add(uint8(17), uint16(1000), uint8(9), []byte{0xaa, 0x55, 0x00, 0xff})
	engines := map[Path][]*Engine{}
	for _, p := range Supported() {
		for _, th := range []int{1, 3} {
			e, err := New(WithPath(p), WithThreads(th))
			if err != nil {
				f.Fatal(err)
			}
			f.Cleanup(e.Close)
			engines[p] = append(engines[p], e)
		}
	}
	f.Fuzz(func(t *testing.T, rows uint8, cols uint16, n uint8, data []byte) {
		if len(data) == 0 {
			return
		}
		r, k, nt := 1+int(rows)%40, 1+int(cols)%1500, 1+int(n)%12
		byteAt := func(i int) byte { return data[i%len(data)] ^ byte(i*131) }
		w, err := ternary.New(r, k, 0.25)
		if err != nil {
			t.Fatal(err)
		}
		for i := range w.Codes {
			v := int(byteAt(i)) % 81
			w.Codes[i] = byte(v%3 | v/3%3<<2 | v/9%3<<4 | v/27<<6)
		}
		a := NewActivations(nt, k)
		for tk := range nt {
			var s int32
			for i := range k {
				q := int8(byteAt(7919 + tk*k + i))
				a.Q[tk*a.Stride+i] = q
				s += int32(q)
			}
			a.Scale[tk], a.Sum[tk] = 1+float32(tk), s
		}
		want := make([]float32, nt*r)
		matMulGeneric(want, w, a, 0, r)
		for p, es := range engines {
			for _, e := range es {
				got := make([]float32, nt*r)
				if err := e.MatMul(got, w, a); err != nil {
					t.Fatal(err)
				}
				if i, ok := firstDiff(got, want); !ok {
					t.Fatalf("%s/%d threads %dx%d n=%d: y[%d] got %v, want %v", p, e.Threads(), r, k, nt, i, got[i], want[i])
				}
			}
		}
	})
}
