package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

func randPacked(t testing.TB, rng *rand.Rand, rows, cols, bits int, mode string) *PackedMatrix {
	t.Helper()
	m, err := allocPacked(rows, cols, bits)
	if err != nil {
		t.Fatal(err)
	}
	lim := 1<<(bits-1) - 1
	q := make([]int8, cols)
	for r := range rows {
		for c := range q {
			switch mode {
			case "min":
				q[c] = int8(-lim)
			case "max":
				q[c] = int8(lim)
			default:
				q[c] = int8(rng.IntN(2*lim+1) - lim)
			}
		}
		m.setRow(r, q)
		m.Scales[r] = float32(rng.Float64()*0.1 + 0.001)
	}
	return m
}

// TestPackedLayout checks setRow against Value for every element.
func TestPackedLayout(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for _, bits := range []int{4, 6} {
		for _, cols := range []int{1, 255, 256, 300, 1000} {
			m, err := allocPacked(3, cols, bits)
			if err != nil {
				t.Fatal(err)
			}
			lim := 1<<(bits-1) - 1
			q := make([]int8, cols)
			for c := range q {
				q[c] = int8(rng.IntN(2*lim+1) - lim)
			}
			m.setRow(1, q)
			for c := range cols {
				if got := m.Value(1, c); got != q[c] {
					t.Fatalf("%d bits, %d cols: value %d got %d, want %d", bits, cols, c, got, q[c])
				}
				if got := m.Value(0, c); got != 0 {
					t.Fatalf("%d bits: untouched row value %d got %d, want 0", bits, c, got)
				}
			}
		}
	}
}

// TestMatMulPackedMatchesGeneric runs every variant bit for bit against
// the generic kernel, and the generic one against a dense reference.
func TestMatMulPackedMatchesGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	gen := newEngine(t, Generic, 1)
	engines := variantEngines(t)
	cases := shapeCases(rng, true)[:14]
	cases = append(cases, shapeCase{7, 3000, 3, "min", "min"}, shapeCase{9, 3000, 5, "max", "min"}, shapeCase{9, 3000, 1, "min", "max"},
		shapeCase{33, 2560, 1, "", ""}, shapeCase{33, 2560, 17, "", ""})
	for _, bits := range []int{4, 6} {
		for _, c := range cases {
			w := randPacked(t, rng, c.rows, c.cols, bits, c.wmode)
			a := randActivations(t, rng, c.n, c.cols, c.qmode)
			want := make([]float32, c.n*c.rows)
			if err := gen.MatMulPacked(want, w, a); err != nil {
				t.Fatal(err)
			}
			for tk := range min(c.n, 2) {
				for r := range min(c.rows, 3) {
					var d int64
					for i := range c.cols {
						d += int64(w.Value(r, i)) * int64(a.Q[tk*a.Stride+i])
					}
					if ref := float32(int32(d)) * (w.Scales[r] / a.Scale[tk]); want[tk*c.rows+r] != ref {
						t.Fatalf("generic %d bits %dx%d: y[%d,%d] got %v, want %v", bits, c.rows, c.cols, tk, r, want[tk*c.rows+r], ref)
					}
				}
			}
			for _, e := range engines {
				got := make([]float32, len(want))
				if err := e.MatMulPacked(got, w, a); err != nil {
					t.Fatal(err)
				}
				if i, ok := firstDiff(got, want); !ok {
					t.Fatalf("%s/%d threads, %d bits %dx%d n=%d (%s,%s): y[%d] got %v, want %v",
						e.Variant(Head), e.Threads(), bits, c.rows, c.cols, c.n, c.wmode, c.qmode, i, got[i], want[i])
				}
			}
		}
	}
}

func TestNewPackedMatrix(t *testing.T) {
	rng := rand.New(rand.NewPCG(35, 36))
	rows, cols := 4, 700
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	prev := 0.0
	for _, bits := range []int{6, 4} {
		m, err := NewPackedMatrix(rows, cols, bits, w)
		if err != nil {
			t.Fatal(err)
		}
		row := make([]float32, cols)
		var e, n float64
		for r := range rows {
			m.Row(row, r)
			for c, v := range row {
				d := float64(v - w[r*cols+c])
				e += d * d
				n += float64(w[r*cols+c]) * float64(w[r*cols+c])
			}
		}
		rel := math.Sqrt(e / n)
		// Uniform steps of max/(2^(bits-1)-1) on normal rows.
		if limit := map[int]float64{6: 0.05, 4: 0.2}[bits]; rel > limit || rel < prev {
			t.Errorf("%d bits: relative RMS error %.4f, want below %.2f and above %d bits' %.4f", bits, rel, limit, bits+2, prev)
		}
		prev = rel
	}
	for _, c := range []struct{ rows, cols, bits, n int }{{0, 4, 4, 0}, {2, 2, 5, 4}, {2, 2, 4, 3}} {
		if _, err := NewPackedMatrix(c.rows, c.cols, c.bits, make([]float32, c.n)); err == nil {
			t.Errorf("NewPackedMatrix(%d, %d, %d bits, %d floats): got nil error", c.rows, c.cols, c.bits, c.n)
		}
	}
	if f, err := ParseHeadFormat(" INT6"); err != nil || f != HeadInt6 || f.Bits() != 6 {
		t.Errorf("ParseHeadFormat(INT6) = %q, %v", f, err)
	}
	if _, err := ParseHeadFormat("int5"); err == nil {
		t.Error("ParseHeadFormat(int5): got nil error")
	}
}
