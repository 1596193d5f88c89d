package train

import (
	"math"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

func TestScheduleAt(t *testing.T) {
	cos := Schedule{Kind: ScheduleCosine, Steps: 100, PeakLR: 1, WarmupFrac: 0.1, MinLRFrac: 0.1, WeightDecay: 0.1}
	two := Schedule{Kind: ScheduleTwoStage, Steps: 110, PeakLR: 1, WarmupFrac: 10.0 / 110, MinLRFrac: 0.1, WeightDecay: 0.1}
	for _, tc := range []struct {
		name   string
		s      Schedule
		step   int
		lr, wd float64
	}{
		{"cosine warmup first", cos, 0, 0.1, 0.1},
		{"cosine warmup last", cos, 9, 1, 0.1},
		{"cosine peak", cos, 10, 1, 0.1},
		{"cosine middle", cos, 55, 0.55, 0.1},
		{"cosine last", cos, 99, 0.1 + 0.9*0.5*(1+math.Cos(math.Pi*89/90)), 0.1},
		{"two-stage peak", two, 10, 1, 0.1},
		{"two-stage stage 1 middle", two, 35, 0.8, 0.1},
		{"two-stage stage 2 start", two, 60, 0.4, 0},
		{"two-stage stage 2 middle", two, 85, 0.25, 0},
	} {
		lr, wd := tc.s.At(tc.step)
		if math.Abs(lr-tc.lr) > 1e-12 || wd != tc.wd {
			t.Errorf("%s: step %d: got lr %v wd %v, want %v %v", tc.name, tc.step, lr, wd, tc.lr, tc.wd)
		}
	}
}

func TestAdamWMatchesReference(t *testing.T) {
	// One parameter, two steps, computed by hand with PyTorch's AdamW formulas.
	lay := layout{specs: []tensorSpec{{Name: "w", Shape: []int{1}, N: 1, Decay: true}}, size: 1}
	o := newAdamW(1, 0.9, 0.95, 1e-8)
	p := newPool(1, kernels.FloatsFor(""))
	params, grads := []float32{1}, []float32{0.5}
	o.update(p, lay, params, grads, 0.1, 0.1, 1)
	// step 1: p = 1*(1-0.01) - 0.1 * m/(1-0.9) / (sqrt(v/(1-0.95)) + eps) = 0.99 - 0.1
	if got, want := float64(params[0]), 0.89; math.Abs(got-want) > 1e-6 {
		t.Errorf("after step 1: got %v, want %v", got, want)
	}
	grads[0] = -0.5
	o.update(p, lay, params, grads, 0.1, 0, 1)
	m := 0.9*0.05 + 0.1*-0.5
	v := 0.95*0.0125 + 0.05*0.25
	want := 0.89 - 0.1*(m/(1-0.81))/(math.Sqrt(v/(1-0.9025))+1e-8)
	if got := float64(params[0]); math.Abs(got-want) > 1e-6 {
		t.Errorf("after step 2: got %v, want %v", got, want)
	}
}
