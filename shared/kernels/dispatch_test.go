package kernels

import (
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
)

func TestSupportedAndBest(t *testing.T) {
	ps := Supported()
	if len(ps) == 0 || ps[0] != Generic {
		t.Fatalf("Supported() = %v, want generic first", ps)
	}
	if Best() != ps[len(ps)-1] {
		t.Errorf("Best() = %s, want %s", Best(), ps[len(ps)-1])
	}
	e, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Path() != Best() {
		t.Errorf("New().Path() = %s, want %s", e.Path(), Best())
	}
	if e.Threads() != runtime.GOMAXPROCS(0) {
		t.Errorf("New().Threads() = %d, want GOMAXPROCS %d", e.Threads(), runtime.GOMAXPROCS(0))
	}
	t.Logf("supported paths: %v", ps)
}

func TestUnsupportedPath(t *testing.T) {
	for _, p := range []Path{Generic, AVX2, AVX512, NEON} {
		e, err := New(WithPath(p))
		if IsSupported(p) {
			if err != nil {
				t.Errorf("New(%s): got %v, want nil", p, err)
			} else {
				e.Close()
			}
			continue
		}
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), string(p)) {
			t.Errorf("New(%s): got %v, want ErrUnsupported naming the path", p, err)
		}
	}
	if _, err := New(WithPath("sse9")); err == nil || !strings.Contains(err.Error(), "sse9") {
		t.Errorf("New(sse9): got %v, want an error naming it", err)
	}
}

func TestPathFromEnv(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == EnvPath {
				return v
			}
			return ""
		}
	}
	for _, c := range []struct {
		val    string
		want   Path
		ok     bool
		hasErr bool
	}{
		{"", "", false, false},
		{"generic", Generic, true, false},
		{" Generic ", Generic, true, false},
		{"bogus", "", false, true},
		{string(Best()), Best(), true, false},
	} {
		p, ok, err := PathFromEnv(env(c.val))
		if p != c.want || ok != c.ok || (err != nil) != c.hasErr {
			t.Errorf("PathFromEnv(%q) = %q, %t, %v; want %q, %t, error %t", c.val, p, ok, err, c.want, c.ok, c.hasErr)
		}
	}
	for _, p := range []Path{AVX2, AVX512, NEON} {
		if IsSupported(p) {
			continue
		}
		if _, _, err := PathFromEnv(env(string(p))); !errors.Is(err, ErrUnsupported) {
			t.Errorf("PathFromEnv(%s) on a CPU without it: got %v, want ErrUnsupported", p, err)
		}
	}
	if _, ok, err := PathFromEnv(nil); ok || err != nil {
		t.Errorf("PathFromEnv(nil) = %t, %v; want false, nil", ok, err)
	}
}

func TestQuantizeRow(t *testing.T) {
	for _, c := range []struct {
		name  string
		x     []float32
		want  []int8
		scale float32
	}{
		// max 127 makes s = 1, so q = round_half_even(x).
		{"ties", []float32{0.5, 1.5, -2.5, 2.5, -0.5, 127}, []int8{0, 2, -2, 2, 0, 127}, 1},
		{"negmax", []float32{-127, 3.5, -4.5}, []int8{-127, 4, -4}, 1},
		{"zeros", []float32{0, 0}, []int8{0, 0}, 127 / float32(1e-5)},
		{"tiny", []float32{1e-7, -1e-7}, []int8{1, -1}, 127 / float32(1e-5)},
	} {
		q := make([]int8, len(c.x))
		s, sum := QuantizeRow(q, c.x)
		var wantSum int32
		for i := range c.want {
			wantSum += int32(c.want[i])
			if q[i] != c.want[i] {
				t.Errorf("%s: q[%d] got %d, want %d", c.name, i, q[i], c.want[i])
			}
		}
		if s != c.scale || sum != wantSum {
			t.Errorf("%s: scale, sum got %v, %d, want %v, %d", c.name, s, sum, c.scale, wantSum)
		}
	}
}

// TestQuantizeReference compares Quantize with a float64 reference of the
// BitNet activation quantizer on random data.
func TestQuantizeReference(t *testing.T) {
	const n, k = 3, 300
	x := make([]float32, n*k)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)*0.37)) * float32(i%7+1)
	}
	a := NewActivations(n, k)
	if err := a.Quantize(x); err != nil {
		t.Fatal(err)
	}
	for tk := range n {
		row := x[tk*k : (tk+1)*k]
		var m float32
		for _, v := range row {
			m = max(m, float32(math.Abs(float64(v))))
		}
		s := 127 / max(m, 1e-5)
		var sum int32
		for i, v := range row {
			want := int8(math.Max(-128, math.Min(127, math.RoundToEven(float64(v*s)))))
			if got := a.Q[tk*a.Stride+i]; got != want {
				t.Fatalf("token %d q[%d] got %d, want %d", tk, i, got, want)
			}
			sum += int32(want)
		}
		for i := k; i < a.Stride; i++ {
			if a.Q[tk*a.Stride+i] != 0 {
				t.Fatalf("token %d padding q[%d] got %d, want 0", tk, i, a.Q[tk*a.Stride+i])
			}
		}
		if a.Scale[tk] != s || a.Sum[tk] != sum {
			t.Errorf("token %d: scale, sum got %v, %d, want %v, %d", tk, a.Scale[tk], a.Sum[tk], s, sum)
		}
	}
}

func TestNewInt8Matrix(t *testing.T) {
	m, err := NewInt8Matrix(2, 3, []float32{1, -0.5, 0.25, 0, 0, 0})
	if err != nil {
		t.Fatal(err)
	}
	want := []int8{127, -64, 32} // 63.5 -> 64 (half even), 31.75 -> 32
	for i, w := range want {
		if m.Data[i] != w {
			t.Errorf("Data[%d] got %d, want %d", i, m.Data[i], w)
		}
	}
	if m.Stride != 256 || m.Scales[0] != 1.0/127 || m.Data[m.Stride] != 0 {
		t.Errorf("stride %d scale %v row1 %d; want 256, %v, 0", m.Stride, m.Scales[0], m.Data[m.Stride], float32(1.0/127))
	}
}
