package metrics

import (
	"strings"
	"testing"
)

func TestInclude(t *testing.T) {
	front, node := NewRegistry(), NewRegistry()
	fc, _ := front.Counter("rpc_total", "RPCs.", "method")
	fc.With("/a").Inc()
	nc, _ := node.Counter("rpc_total", "", "method")
	nc.With("/a").Add(2)
	nh, _ := node.Histogram("ttft_seconds", "TTFT.", []float64{1}, "model")
	nh.With("m").Observe(0.5)
	_ = node.GaugeFunc("loaded", "Loaded.", func() float64 { return 1 })
	own, _ := node.Gauge("queue", "", "node") // keeps its own node label
	own.With("n9").Set(4)
	_, _ = node.Gauge("front_only", "")         // clashes in kind below: left out
	_, _ = front.Counter("front_only", "", "x") // first registered kind wins
	if err := front.Include(node, Label{"node", "local"}); err != nil {
		t.Fatal(err)
	}
	want := `# TYPE front_only counter
# HELP loaded Loaded.
# TYPE loaded gauge
loaded{node="local"} 1
# TYPE queue gauge
queue{node="n9"} 4
# HELP rpc_total RPCs.
# TYPE rpc_total counter
rpc_total{method="/a"} 1
rpc_total{node="local",method="/a"} 2
# HELP ttft_seconds TTFT.
# TYPE ttft_seconds histogram
ttft_seconds_bucket{node="local",model="m",le="1"} 1
ttft_seconds_bucket{node="local",model="m",le="+Inf"} 1
ttft_seconds_sum{node="local",model="m"} 0.5
ttft_seconds_count{node="local",model="m"} 1
`
	if got := front.WriteText(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// Families registered after Include show up too.
	late, _ := node.Counter("late_total", "")
	late.With().Inc()
	if got := front.WriteText(); !strings.Contains(got, `late_total{node="local"} 1`) {
		t.Errorf("got\n%s\nwant late_total from the included registry", got)
	}
	// The included registry's own exposition is unchanged.
	if got := node.WriteText(); !strings.Contains(got, `rpc_total{method="/a"} 2`) || strings.Contains(got, `node="local"`) {
		t.Errorf("included registry's own text: got\n%s", got)
	}
}

func TestIncludeNested(t *testing.T) {
	a, b, c := NewRegistry(), NewRegistry(), NewRegistry()
	g, _ := c.Gauge("g", "")
	g.With().Set(1)
	if err := b.Include(c, Label{"inner", `x"y`}); err != nil {
		t.Fatal(err)
	}
	if err := a.Include(b, Label{"outer", "o"}); err != nil {
		t.Fatal(err)
	}
	if got, want := a.WriteText(), "# TYPE g gauge\ng{outer=\"o\",inner=\"x\\\"y\"} 1\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestIncludeErrors(t *testing.T) {
	a, b := NewRegistry(), NewRegistry()
	if err := a.Include(b); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		err  error
	}{
		{"nil", a.Include(nil)},
		{"self", a.Include(a, Label{"n", "v"})},
		{"cycle", b.Include(a, Label{"n", "v"})},
		{"bad label", a.Include(NewRegistry(), Label{"1x", "v"})},
		{"le", a.Include(NewRegistry(), Label{"le", "v"})},
		{"reserved", a.Include(NewRegistry(), Label{"__n", "v"})},
		{"twice", a.Include(NewRegistry(), Label{"n", "v"}, Label{"n", "w"})},
	}
	for _, tt := range tests {
		if tt.err == nil {
			t.Errorf("%s: got nil error, want one", tt.name)
		}
	}
	if got := a.WriteText(); got != "" { // b is empty and nothing else was added
		t.Errorf("got %q, want empty exposition", got)
	}
}
