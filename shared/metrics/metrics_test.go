package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func scrape(t *testing.T, r *Registry) string {
	t.Helper()
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got status %d, want 200: %s", resp.StatusCode, b)
	}
	return string(b)
}

func TestRuntimeCollectors(t *testing.T) {
	out := scrape(t, NewRegistry())
	for _, want := range []string{"go_goroutines ", "go_memstats_heap_alloc_bytes ", "process_resident_memory_bytes ", "process_cpu_seconds_total "} {
		if !strings.Contains(out, want) {
			t.Errorf("got no %q in the scrape", want)
		}
	}
}

func TestRegisterReturnsExisting(t *testing.T) {
	r := NewRegistry()
	opts := prometheus.CounterOpts{Name: "rpc_total", Help: "RPCs."}
	a, err := Register(r, prometheus.NewCounterVec(opts, []string{"method"}))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Register(r, prometheus.NewCounterVec(opts, []string{"method"}))
	if err != nil {
		t.Fatal(err)
	}
	a.WithLabelValues("/a").Inc()
	b.WithLabelValues("/a").Inc()
	if got := testutil.ToFloat64(a.WithLabelValues("/a")); got != 2 {
		t.Errorf("got %v, want 2: the second Register must return the first collector", got)
	}
	if _, err := Register(r, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rpc_total", Help: "RPCs."}, []string{"code"})); err == nil {
		t.Error("got no error for a clashing family, want one")
	}
}

func TestGaugeFuncReplaced(t *testing.T) {
	r := NewRegistry()
	opts := prometheus.GaugeOpts{Name: "queue_depth", Help: "Queue."}
	if err := r.GaugeFunc(opts, func() float64 { return 1 }); err != nil {
		t.Fatal(err)
	}
	if err := r.GaugeFunc(opts, func() float64 { return 7 }); err != nil {
		t.Fatal(err)
	}
	if out := scrape(t, r); !strings.Contains(out, "queue_depth 7\n") {
		t.Errorf("got\n%s\nwant queue_depth 7", out)
	}
	if err := r.GaugeFunc(opts, nil); err == nil {
		t.Error("got no error for a nil func")
	}
}

func TestInclude(t *testing.T) {
	front, node := NewRegistry(), NewRegistry()
	opts := prometheus.CounterOpts{Name: "rpc_total", Help: "RPCs."}
	fc, _ := Register(front, prometheus.NewCounterVec(opts, []string{"method"}))
	fc.WithLabelValues("/a").Inc()
	nc, _ := Register(node, prometheus.NewCounterVec(opts, []string{"method"}))
	nc.WithLabelValues("/a").Add(2)
	own, _ := Register(node, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "queue", Help: "Q."}, []string{"node"}))
	own.WithLabelValues("n9").Set(4)
	if err := front.Include(node, Label{"node", "local"}); err != nil {
		t.Fatal(err)
	}
	out := scrape(t, front)
	for _, want := range []string{
		`rpc_total{method="/a"} 1`,
		`rpc_total{method="/a",node="local"} 2`,
		`queue{node="n9"} 4`, // keeps its own node label
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("got no %s in\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\ngo_goroutines"); n != 1 {
		t.Errorf("got go_goroutines %d times, want once (one process, one runtime)", n)
	}

	tests := []struct {
		name   string
		sub    *Registry
		labels []Label
	}{
		{"nil", nil, nil},
		{"self", front, nil},
		{"cycle", node, nil}, // node includes front below
		{"reserved", NewRegistry(), []Label{{"__x", "1"}}},
		{"le", NewRegistry(), []Label{{"le", "1"}}},
		{"bad", NewRegistry(), []Label{{"a-b", "1"}}},
		{"twice", NewRegistry(), []Label{{"a", "1"}, {"a", "2"}}},
	}
	_ = node.Include(NewRegistry())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := front
			if tt.name == "cycle" {
				target = tt.sub
				tt.sub = front
			}
			if err := target.Include(tt.sub, tt.labels...); err == nil {
				t.Error("got nil error, want one")
			}
		})
	}
}
