package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

// TestBenchKernelsJSON runs a tiny configuration and checks the JSON contract
// of issue 2: bandwidth by thread count and one result per path, shape, n,
// thread count (and cold for n = 1).
func TestBenchKernelsJSON(t *testing.T) {
	cfg := benchKernelConfig{
		paths: kernels.Supported(), threads: []int{1, 2}, shapes: [][2]int{{64, 300}}, ns: []int{1, 3},
		probeSize: 1 << 20, minTime: time.Millisecond, reps: 1, coldBytes: 1 << 16,
	}
	rep, err := benchKernels(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(rep); err != nil {
		t.Fatal(err)
	}
	var got struct {
		BW      map[string]float64 `json:"bandwidth_gbps"`
		Results []map[string]any   `json:"results"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.BW["1"] <= 0 || got.BW["2"] <= 0 {
		t.Errorf("bandwidth_gbps got %v, want positive values for \"1\" and \"2\"", got.BW)
	}
	if want := len(cfg.paths) * 2 * 3; len(got.Results) != want {
		t.Fatalf("got %d results, want %d", len(got.Results), want)
	}
	keys := []string{"path", "out", "in", "n", "threads", "cold", "ns_per_op", "weight_gbps", "gops", "bw_ratio"}
	for _, r := range got.Results {
		for _, k := range keys {
			if _, ok := r[k]; !ok {
				t.Fatalf("result %v lacks %q", r, k)
			}
		}
		if r["ns_per_op"].(float64) <= 0 || r["bw_ratio"].(float64) <= 0 {
			t.Errorf("result %v: want positive ns_per_op and bw_ratio", r)
		}
	}
}

func TestBenchKernelsFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--path", "sse9"}, "sse9"},
		{[]string{"--threads", "0"}, "--threads 0"},
		{[]string{"extra"}, "unexpected"},
		{[]string{"--variants", "--rounds", "0"}, "--rounds 0"},
		{[]string{"--variants", "--threads", "-1"}, "--threads -1"},
	} {
		err := run(context.Background(), append([]string{"bench", "kernels"}, c.args...), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("bench kernels %q: got %v, want an error containing %q", c.args, err, c.want)
		}
	}
}

// TestBenchKernelsPlan runs the measured plan beside the forced paths and
// prints the plan-versus-best table.
func TestBenchKernelsPlan(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	cfg := benchKernelConfig{
		paths: kernels.Supported(), threads: []int{1}, shapes: [][2]int{{64, 300}}, ns: []int{1, 3},
		probeSize: 1 << 20, minTime: time.Millisecond, reps: 1, coldBytes: 1 << 16, plan: kernels.PlanAuto,
	}
	rep, err := benchKernels(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := rep.Plans["1"]; !ok || p.Source != "measured" {
		t.Fatalf("plans %v: want a measured plan for 1 thread", rep.Plans)
	}
	plans := 0
	for _, r := range rep.Results {
		if r.Path == "plan" {
			plans++
		}
	}
	if want := 3; plans != want { // n = 1 cold and warm, n = 3
		t.Errorf("got %d plan results, want %d", plans, want)
	}
	var out bytes.Buffer
	printKernelReport(&out, rep)
	if !strings.Contains(out.String(), "plan vs best forced path") {
		t.Errorf("report lacks the plan table:\n%s", out.String())
	}
}

// TestBenchVariants runs the cold GEMV sweep on a tiny configuration: one
// row per variant, shape (and head format) and thread count, each against
// a positive probe, the plan's choice marked once per case, the fastest
// variant at vs_best 1.
func TestBenchVariants(t *testing.T) {
	plan := kernels.StaticPlan()
	cfg := sweepConfig{threads: []int{1, 2}, shapes: [][2]int{{64, 512}, {24, 300}}, head: [2]int{300, 512}, rounds: 2, roundB: 1 << 10,
		coldBytes: 1 << 20, plans: map[int]kernels.Plan{1: plan, 2: plan}}
	var out bytes.Buffer
	rs, err := benchVariants(context.Background(), cfg, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	gemv, head := kernels.MeasuredVariants(kernels.GEMVMemory), kernels.MeasuredVariants(kernels.Head)
	if want := 2*2*len(gemv) + 2*2*len(head); len(rs) != want {
		t.Fatalf("got %d rows, want %d", len(rs), want)
	}
	type caseKey struct {
		shape   string
		threads int
	}
	planned, best := map[caseKey]int{}, map[caseKey]int{}
	for _, r := range rs {
		k := caseKey{r.Shape, r.Threads}
		if r.P10Ns <= 0 || r.GBps <= 0 || r.Probe <= 0 || r.Ratio <= 0 || r.Samples < 2 || r.VsBest < 1 {
			t.Errorf("row %+v: want positive times and rates, 2 samples or more, vs_best >= 1", r)
		}
		if r.Planned {
			planned[k]++
		}
		if r.VsBest == 1 {
			best[k]++
		}
	}
	for k := range best {
		if planned[k] != 1 || best[k] < 1 {
			t.Errorf("%v: got %d rows marked as the plan's and %d fastest, want 1 and at least 1", k, planned[k], best[k])
		}
	}
	if len(best) != 2*2+2*2 {
		t.Errorf("got %d cases, want 8", len(best))
	}
	if !strings.Contains(out.String(), "<- plan") || !strings.Contains(out.String(), "head int6 300x512") {
		t.Errorf("table lacks the plan mark or the int6 head:\n%s", out.String())
	}
}
