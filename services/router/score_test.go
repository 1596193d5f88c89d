package router

import (
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metal"
)

// snap builds a node snapshot for scoring tests.
func snap(id string, k kernels.Path, mods ...func(*nodeSnapshot)) nodeSnapshot {
	s := nodeSnapshot{id: id, meta: NodeMeta{Hardware: hwReport(k)}, usable: true}
	for _, m := range mods {
		m(&s)
	}
	return s
}

func inflight(n int) func(*nodeSnapshot)  { return func(s *nodeSnapshot) { s.inflight = n } }
func reported(n int) func(*nodeSnapshot)  { return func(s *nodeSnapshot) { s.meta.Inflight = n } }
func queued(n int) func(*nodeSnapshot)    { return func(s *nodeSnapshot) { s.meta.QueueDepth = n } }
func ttft(ms float64) func(*nodeSnapshot) { return func(s *nodeSnapshot) { s.ewmaTTFT = ms } }
func failing() func(*nodeSnapshot)        { return func(s *nodeSnapshot) { s.failing = true } }
func speed(tok float64) func(*nodeSnapshot) {
	return func(s *nodeSnapshot) { s.meta.Hardware.Perf.DecodeTokS = tok }
}
func unusable() func(*nodeSnapshot) { return func(s *nodeSnapshot) { s.usable = false } }
func loaded(ref string) func(*nodeSnapshot) {
	return func(s *nodeSnapshot) {
		r, _ := modelv1.ParseRef(ref)
		s.meta.LoadedModels = append(s.meta.LoadedModels, r)
	}
}

func TestChoose(t *testing.T) {
	tests := []struct {
		name    string
		model   string
		require []string
		prefer  string
		nodes   []nodeSnapshot
		want    string
	}{
		{"fastest node when idle", "", nil, "", []nodeSnapshot{snap("g", kernels.Generic), snap("a2", kernels.AVX2), snap("a5", kernels.AVX512)}, "a5"},
		// Zen 4: the avx512 node decodes slower than an avx2 one; speed, not the ISA name, decides.
		{"measured speed beats ISA", "", nil, "", []nodeSnapshot{snap("a5", kernels.AVX512, speed(18.6)), snap("a2", kernels.AVX2, speed(26.4))}, "a2"},
		{"unmeasured node after measured fast one", "", nil, "", []nodeSnapshot{snap("old", kernels.AVX512, speed(0)), snap("a2", kernels.AVX2)}, "a2"},
		{"busy fast node loses", "", nil, "", []nodeSnapshot{snap("a2", kernels.AVX2), snap("a5", kernels.AVX512, inflight(2))}, "a2"},
		{"node-reported load counts", "", nil, "", []nodeSnapshot{snap("a2", kernels.AVX2), snap("a5", kernels.AVX512, reported(2))}, "a2"},
		{"queue counts double", "", nil, "", []nodeSnapshot{snap("g", kernels.Generic), snap("a5", kernels.AVX512, queued(2))}, "g"},
		{"loaded model wins over tier", "tiny", nil, "", []nodeSnapshot{snap("a2", kernels.AVX2, loaded("tiny@1")), snap("a5", kernels.AVX512)}, "a2"},
		{"loaded version must match", "tiny@2", nil, "", []nodeSnapshot{snap("a2", kernels.AVX2, loaded("tiny@1")), snap("a5", kernels.AVX512)}, "a5"},
		{"alias matches any loaded version", "tiny:prod", nil, "", []nodeSnapshot{snap("a2", kernels.AVX2, loaded("tiny@1")), snap("a5", kernels.AVX512)}, "a2"},
		{"prefer kernel", "", nil, "neon", []nodeSnapshot{snap("n", kernels.NEON), snap("a5", kernels.AVX512)}, "n"},
		{"prefer yields to load", "", nil, "generic", []nodeSnapshot{snap("g", kernels.Generic, inflight(8)), snap("a5", kernels.AVX512)}, "a5"},
		{"slow TTFT avoided", "", nil, "", []nodeSnapshot{snap("x", kernels.AVX2, ttft(400)), snap("y", kernels.AVX2, ttft(50))}, "y"},
		{"failing node last resort", "", nil, "", []nodeSnapshot{snap("a5", kernels.AVX512, failing()), snap("g", kernels.Generic, inflight(20))}, "g"},
		{"failing node when alone", "", nil, "", []nodeSnapshot{snap("a5", kernels.AVX512, failing())}, "a5"},
		{"require filters", "", []string{"avx2"}, "", []nodeSnapshot{snap("g", kernels.Generic), snap("a2", kernels.AVX2, inflight(5))}, "a2"},
		{"unusable ignored", "", nil, "", []nodeSnapshot{snap("a5", kernels.AVX512, unusable()), snap("g", kernels.Generic)}, "g"},
		// A Mac whose products run on its GPU offers metal (hwReport: as fast as NEON here).
		{"require metal", "", []string{"metal"}, "", []nodeSnapshot{snap("a5", kernels.AVX512), snap("m", kernels.Metal, inflight(3))}, "m"},
		{"prefer metal", "", nil, "metal", []nodeSnapshot{snap("a5", kernels.AVX512), snap("m", kernels.Metal)}, "m"},
		{"metal not preferred: fastest", "", nil, "", []nodeSnapshot{snap("a5", kernels.AVX512), snap("m", kernels.Metal)}, "a5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := newDemand(tt.model, tt.require, tt.prefer)
			if err != nil {
				t.Fatal(err)
			}
			cands, err := d.candidates(tt.nodes)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			for range 20 {
				if got := d.choose(cands, rng); got.id != tt.want {
					t.Fatalf("got %s, want %s", got.id, tt.want)
				}
			}
		})
	}
}

func TestChooseSpreadsTies(t *testing.T) {
	d, _ := newDemand("", nil, "")
	nodes := []nodeSnapshot{snap("a", kernels.AVX2), snap("b", kernels.AVX2, ttft(0.2)), snap("c", kernels.AVX2, ttft(0.3)), snap("d", kernels.AVX2, inflight(1))}
	rng := rand.New(rand.NewPCG(7, 7))
	got := map[string]int{}
	for range 300 {
		got[d.choose(nodes, rng).id]++
	}
	for _, id := range []string{"a", "b", "c"} {
		if got[id] < 60 {
			t.Errorf("got picks %v, want a, b and c about 100 each", got)
		}
	}
	if got["d"] != 0 {
		t.Errorf("got picks %v, want none on the busier d", got)
	}
	// The same seed gives the same sequence.
	r1, r2 := rand.New(rand.NewPCG(3, 4)), rand.New(rand.NewPCG(3, 4))
	for i := range 50 {
		if a, b := d.choose(nodes, r1).id, d.choose(nodes, r2).id; a != b {
			t.Fatalf("pick %d: got %s and %s from equal seeds, want equal", i, a, b)
		}
	}
}

func TestCandidatesErrors(t *testing.T) {
	nodes := []nodeSnapshot{snap("g", kernels.Generic), snap("a5", kernels.AVX512)}
	tests := []struct {
		name    string
		require []string
		prefer  string
		nodes   []nodeSnapshot
		code    codes.Code
		msg     string
	}{
		{"none offers", []string{"neon"}, "", nodes, codes.FailedPrecondition,
			"no inference node offers neon (require neon); nodes offer: g: kernels generic; a5: kernels generic,avx2,avx512 features avx2,avx512f,avx512bw,avx512vl,avx512vnni"},
		{"not together", []string{"avx512", "dotprod", "generic"}, "", []nodeSnapshot{snap("n", kernels.NEON), snap("a5", kernels.AVX512)}, codes.FailedPrecondition,
			"no inference node offers all of avx512, dotprod, generic together; nodes offer: n: kernels generic,neon features neon,dotprod; a5: kernels generic,avx2,avx512 features avx2,avx512f,avx512bw,avx512vl,avx512vnni"},
		{"no nodes", nil, "", nil, codes.Unavailable, "router: no healthy inference node"},
		{"only unusable", nil, "", []nodeSnapshot{snap("x", kernels.AVX2, unusable())}, codes.Unavailable, "router: no healthy inference node"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := newDemand("", tt.require, tt.prefer)
			if err != nil {
				t.Fatal(err)
			}
			_, err = d.candidates(tt.nodes)
			if s, _ := status.FromError(err); s.Code() != tt.code || s.Message() != tt.msg {
				t.Errorf("got %v %q\nwant %v %q", s.Code(), s.Message(), tt.code, tt.msg)
			}
		})
	}
	for _, bad := range []struct{ model, require, prefer string }{{"Bad Ref", "", ""}, {"", "warp", ""}, {"", "", "sse9"}, {"tiny@0", "", ""}} {
		var req []string
		if bad.require != "" {
			req = []string{bad.require}
		}
		if _, err := newDemand(bad.model, req, bad.prefer); status.Code(err) != codes.InvalidArgument {
			t.Errorf("newDemand(%q, %q, %q): got %v, want InvalidArgument", bad.model, bad.require, bad.prefer, err)
		}
	}
}

// TestMetalNeedsAWorkingGPU: a Mac whose GPU failed its self-test (or
// whose plan keeps to the CPU) serves on NEON and does not offer metal.
func TestMetalNeedsAWorkingGPU(t *testing.T) {
	failed := snap("mac", kernels.NEON)
	failed.meta.Hardware = failed.meta.Hardware.WithMetal(metal.Info{Reason: "metal: self-test on Apple M1: int6 ...", Device: "Apple M1 GPU"}, true)
	idle := snap("mac2", kernels.NEON)
	idle.meta.Hardware = idle.meta.Hardware.WithMetal(metal.Info{Available: true, Device: "Apple M1"}, false)
	d, err := newDemand("", []string{"metal"}, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.candidates([]nodeSnapshot{failed, idle})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "no inference node offers metal") {
		t.Errorf("got %v, want FAILED_PRECONDITION naming metal", err)
	}
	if !strings.Contains(err.Error(), "mac2: kernels generic,neon features neon,dotprod,metal") {
		t.Errorf("got %v, want the idle Mac's GPU listed as a feature", err)
	}
}

func TestNoFitListsAtMostEightNodes(t *testing.T) {
	var nodes []nodeSnapshot
	for i := range 12 {
		nodes = append(nodes, snap(string(rune('a'+i)), kernels.Generic))
	}
	d, _ := newDemand("", []string{"avx2"}, "")
	_, err := d.candidates(nodes)
	if s, _ := status.FromError(err); !containsAll(s.Message(), "h: kernels generic ... and 4 more") || containsAll(s.Message(), "i: kernels") {
		t.Errorf("got %q, want 8 nodes listed and 4 more counted", s.Message())
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func TestPassedOverNodeIsRetried(t *testing.T) {
	tests := []struct {
		name             string
		slow, fast       float64 // TTFT averages, ms
		wantMin, wantMax int     // passes until the slow node ties again
	}{
		{"noise spike", 65, 10, 1, 12},
		{"really slow", 400, 50, 10, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &node{ewmaTTFT: tt.slow}
			d := demand{}
			passes := 0
			for ; passes < 100; passes++ {
				slow := nodeSnapshot{ewmaTTFT: n.ewmaTTFT, usable: true}
				fast := nodeSnapshot{ewmaTTFT: tt.fast, usable: true}
				if d.cost(slow, tt.fast, 0)-d.cost(fast, tt.fast, 0) <= tieTolerance {
					break
				}
				n.passedOver(tt.fast)
			}
			if passes < tt.wantMin || passes > tt.wantMax {
				t.Errorf("got a retry after %d passes, want %d..%d", passes, tt.wantMin, tt.wantMax)
			}
		})
	}
}
