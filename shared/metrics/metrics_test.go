package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestExposition(t *testing.T) {
	r := NewRegistry()
	c, err := r.Counter("req_total", "Requests.\nBy code.", "method", "code")
	if err != nil {
		t.Fatal(err)
	}
	c.With("/a.B/C", "OK").Add(2)
	c.With("/a.B/C", "Internal").Inc()
	c.With("x").Inc() // wrong arity: detached, not exported
	g, _ := r.Gauge("queue_depth", "", "node")
	g.With(`n"1\`).Set(3.5)
	if err := r.GaugeFunc("loaded_models", "Loaded.", func() float64 { return 2 }); err != nil {
		t.Fatal(err)
	}
	h, err := r.Histogram("lat_seconds", "Latency.", []float64{0.1, 1}, "method")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []float64{0.05, 0.1, 0.5, 7} {
		h.With("m").Observe(v)
	}
	want := `# HELP lat_seconds Latency.
# TYPE lat_seconds histogram
lat_seconds_bucket{method="m",le="0.1"} 2
lat_seconds_bucket{method="m",le="1"} 3
lat_seconds_bucket{method="m",le="+Inf"} 4
lat_seconds_sum{method="m"} 7.65
lat_seconds_count{method="m"} 4
# HELP loaded_models Loaded.
# TYPE loaded_models gauge
loaded_models 2
# TYPE queue_depth gauge
queue_depth{node="n\"1\\"} 3.5
# HELP req_total Requests.\nBy code.
# TYPE req_total counter
req_total{method="/a.B/C",code="Internal"} 1
req_total{method="/a.B/C",code="OK"} 2
`
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if got := string(body); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := rec.Header().Get("Content-Type"); got != ContentType {
		t.Errorf("got content type %q, want %q", got, ContentType)
	}
}

func TestRegistryErrors(t *testing.T) {
	r := NewRegistry()
	if _, err := r.Counter("a", "", "x"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		do   func() error
	}{
		{"bad name", func() error { _, err := r.Counter("1a", ""); return err }},
		{"bad label", func() error { _, err := r.Counter("b", "", "le"); return err }},
		{"reserved label", func() error { _, err := r.Counter("b", "", "__x"); return err }},
		{"kind clash", func() error { _, err := r.Gauge("a", "", "x"); return err }},
		{"label clash", func() error { _, err := r.Counter("a", "", "y"); return err }},
		{"unsorted buckets", func() error { _, err := r.Histogram("h", "", []float64{2, 1}); return err }},
		{"nil func", func() error { return r.GaugeFunc("f", "", nil) }},
	}
	for _, tt := range tests {
		if err := tt.do(); err == nil {
			t.Errorf("%s: got nil error, want one", tt.name)
		}
	}
	again, err := r.Counter("a", "", "x")
	if err != nil || again == nil {
		t.Fatalf("get-or-create: got %v, %v", again, err)
	}
}

func TestConcurrent(t *testing.T) {
	r := NewRegistry()
	c, _ := r.Counter("n_total", "", "k")
	h, _ := r.Histogram("h", "", nil)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				c.With("v").Inc()
				h.With().Observe(0.01)
				if j%100 == 0 {
					_ = r.WriteText()
				}
			}
		}()
	}
	wg.Wait()
	if got := c.With("v").Value(); got != 8000 {
		t.Errorf("got count %v, want 8000", got)
	}
	if got := h.With().Count(); got != 8000 {
		t.Errorf("got observations %v, want 8000", got)
	}
	if !strings.Contains(r.WriteText(), `h_bucket{le="0.01"} 8000`) {
		t.Errorf("got %s, want le=0.01 bucket with 8000", r.WriteText())
	}
}
