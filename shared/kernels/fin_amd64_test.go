package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestFinishers checks the assembly tile finishers bit for bit against
// the Go loops they replace, on extreme and random int32 tiles.
func TestFinishers(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	const rows = 7 // stores at y[j*rows+i]: a stride that is no multiple of 4
	for k := range 200 {
		var d [maxTile]int32
		var s [4]int32
		var f, ws, as [4]float32
		for i := range 16 {
			switch k % 4 {
			case 0:
				d[i] = int32(rng.Uint32())
			case 1:
				d[i] = []int32{math.MinInt32, math.MaxInt32, 0, -1}[rng.IntN(4)]
			default:
				d[i] = int32(rng.IntN(1<<20)) - 1<<19
			}
		}
		for j := range 4 {
			s[j] = int32(rng.IntN(1<<16)) - 1<<15
			f[j] = float32(rng.NormFloat64())
			ws[j] = float32(rng.ExpFloat64()) / 100
			as[j] = float32(rng.ExpFloat64()) * 50
		}
		got, want := make([]float32, 4*rows), make([]float32, 4*rows)
		finTern4x4(&got[0], rows, &d[0], &s[0], &f[0])
		for j := range 4 {
			for i := range 4 {
				want[j*rows+i] = float32(d[i*4+j]-s[j]) * f[j]
			}
		}
		if i, ok := firstDiff(got, want); !ok {
			t.Fatalf("finTern4x4 case %d: y[%d] got %v, want %v", k, i, got[i], want[i])
		}
		clear(got)
		clear(want)
		finScaled4x4(&got[0], rows, &d[0], &s[0], &ws[0], &as[0])
		for j := range 4 {
			for i := range 4 {
				want[j*rows+i] = float32(d[i*4+j]-s[j]) * (ws[i] / as[j])
			}
		}
		if i, ok := firstDiff(got, want); !ok {
			t.Fatalf("finScaled4x4 case %d: y[%d] got %v, want %v", k, i, got[i], want[i])
		}
		clear(got)
		clear(want)
		finTern4x2(&got[0], rows, &d[0], &s[0], &f[0])
		for j := range 2 {
			for i := range 4 {
				want[j*rows+i] = float32(d[i*2+j]-s[j]) * f[j]
			}
		}
		if i, ok := firstDiff(got, want); !ok {
			t.Fatalf("finTern4x2 case %d: y[%d] got %v, want %v", k, i, got[i], want[i])
		}
		clear(got)
		clear(want)
		finScaled4x2(&got[0], rows, &d[0], &s[0], &ws[0], &as[0])
		for j := range 2 {
			for i := range 4 {
				want[j*rows+i] = float32(d[i*2+j]-s[j]) * (ws[i] / as[j])
			}
		}
		if i, ok := firstDiff(got, want); !ok {
			t.Fatalf("finScaled4x2 case %d: y[%d] got %v, want %v", k, i, got[i], want[i])
		}
	}
}
