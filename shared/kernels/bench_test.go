package kernels

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"unsafe"

	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// benchShapes are the BitLinear shapes (out x in) of BitNet b1.58 2B4T.
var benchShapes = [][2]int{{2560, 2560}, {640, 2560}, {6912, 2560}, {2560, 6912}}

// fastTernary fills a rows x cols matrix with random valid code bytes,
// much faster than packing dense values.
func fastTernary(rng *rand.Rand, rows, cols int) *ternary.Matrix {
	m, _ := ternary.New(rows, cols, 0.7)
	for i := range m.Codes {
		v := rng.IntN(81)
		m.Codes[i] = byte(v%3 | v/3%3<<2 | v/9%3<<4 | v/27<<6)
	}
	return m
}

// BenchmarkMatMul reports, per path, shape, token count and thread count, the
// weight bytes read per second and int8 GOPS (2 ops per multiply-add). The
// cold n=1 variant rotates through enough matrices to exceed a 32 MiB LLC.
func BenchmarkMatMul(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	threads := []int{1}
	if p := runtime.GOMAXPROCS(0); p > 1 {
		threads = append(threads, p)
	}
	for _, sh := range benchShapes {
		rows, cols := sh[0], sh[1]
		w := fastTernary(rng, rows, cols)
		var cold []*ternary.Matrix
		for len(cold)*len(w.Codes) < 96<<20 {
			cold = append(cold, fastTernary(rng, rows, cols))
		}
		for _, n := range []int{1, 8, 64} {
			a := randActivations(b, rng, n, cols, "")
			y := make([]float32, n*rows)
			for _, p := range Supported() {
				for _, th := range threads {
					e := newEngine(b, p, th)
					variants := []string{"hot"}
					if n == 1 {
						variants = append(variants, "cold")
					}
					for _, v := range variants {
						name := fmt.Sprintf("%s/%dx%d/n=%d/threads=%d/%s", p, rows, cols, n, th, v)
						b.Run(name, func(b *testing.B) {
							i := 0
							for b.Loop() {
								m := w
								if v == "cold" {
									m = cold[i%len(cold)]
									i++
								}
								if err := e.MatMul(y, m, a); err != nil {
									b.Fatal(err)
								}
							}
							sec := b.Elapsed().Seconds() / float64(b.N)
							b.ReportMetric(float64(len(w.Codes))/sec/1e9, "weightGB/s")
							b.ReportMetric(2*float64(rows*cols*n)/sec/1e9, "GOPS")
						})
					}
				}
			}
		}
	}
}

// BenchmarkMatMulInt8 measures the output-head product (vocabulary 128256 is
// scaled down to 32000 rows to keep setup short).
func BenchmarkMatMulInt8(b *testing.B) {
	rng := rand.New(rand.NewPCG(2, 2))
	const rows, cols = 32000, 2560
	w := &Int8Matrix{Rows: rows, Cols: cols, Stride: cols, Data: make([]int8, rows*cols), Scales: make([]float32, rows)}
	for i := range w.Data {
		w.Data[i] = int8(rng.Uint32())
	}
	for i := range w.Scales {
		w.Scales[i] = 0.01
	}
	for _, n := range []int{1, 8} {
		a := randActivations(b, rng, n, cols, "")
		y := make([]float32, n*rows)
		for _, p := range Supported() {
			e := newEngine(b, p, runtime.GOMAXPROCS(0))
			b.Run(fmt.Sprintf("%s/n=%d", p, n), func(b *testing.B) {
				for b.Loop() {
					if err := e.MatMulInt8(y, w, a); err != nil {
						b.Fatal(err)
					}
				}
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(float64(len(w.Data))/sec/1e9, "weightGB/s")
				b.ReportMetric(2*float64(rows*cols*n)/sec/1e9, "GOPS")
			})
		}
	}
}

// BenchmarkHead2B measures the int8 output head of the 2B4T shape
// (128256 x 2560, 328 MB: far beyond any cache) for one token on one
// thread, next to ReadSum over the same bytes: decode reads it every token.
func BenchmarkHead2B(b *testing.B) {
	const rows, cols = 128256, 2560
	rng := rand.New(rand.NewPCG(3, 3))
	w := &Int8Matrix{Rows: rows, Cols: cols, Stride: cols, Data: make([]int8, rows*cols), Scales: make([]float32, rows)}
	for i := range w.Data {
		w.Data[i] = int8(i*7 + i>>9)
	}
	for i := range w.Scales {
		w.Scales[i] = 0.01
	}
	a := randActivations(b, rng, 1, cols, "")
	y := make([]float32, rows)
	e := newEngine(b, Best(), 1)
	raw := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(w.Data))), len(w.Data))
	b.Run("matmulint8", func(b *testing.B) {
		b.SetBytes(int64(len(w.Data)))
		for b.Loop() {
			if err := e.MatMulInt8(y, w, a); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("readsum", func(b *testing.B) {
		b.SetBytes(int64(len(w.Data)))
		for b.Loop() {
			ReadSum(raw, true)
		}
	})
}

// BenchmarkPackedBatch measures a packed head slice (cache-resident, 4096
// rows of 2560) against 16 tokens on one thread, per path: the batched
// decode's head step, where the tile finishers count.
func BenchmarkPackedBatch(b *testing.B) {
	const rows, cols, n = 4096, 2560, 16
	rng := rand.New(rand.NewPCG(4, 4))
	wf := make([]float32, rows*cols)
	for i := range wf {
		wf[i] = float32(rng.NormFloat64())
	}
	a := randActivations(b, rng, n, cols, "")
	y := make([]float32, n*rows)
	for _, bits := range []int{6, 4} {
		w, err := NewPackedMatrix(rows, cols, bits, wf)
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range Supported() {
			if p == Generic {
				continue
			}
			e := newEngine(b, p, 1)
			b.Run(fmt.Sprintf("int%d/%s", bits, p), func(b *testing.B) {
				for b.Loop() {
					if err := e.MatMulPacked(y, w, a); err != nil {
						b.Fatal(err)
					}
				}
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(2*float64(rows*cols*n)/sec/1e9, "GOPS")
			})
		}
	}
}
