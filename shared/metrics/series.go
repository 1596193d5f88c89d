package metrics

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// DefBuckets are latency buckets in seconds, from 0.5 ms to 60 s.
var DefBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// vec is a labelled set of series of one type.
type vec[T any] struct {
	n      string
	labels []string
	newT   func() T
	mu     sync.RWMutex
	series map[string]T // key: label values joined by \xff
	values map[string][]string
}

func newVec[T any](name string, labels []string, newT func() T) vec[T] {
	return vec[T]{n: name, labels: labels, newT: newT, series: map[string]T{}, values: map[string][]string{}}
}

// with returns the series for the label values. A wrong number of values gets
// a detached series that is never exported: metrics must not crash a server.
func (v *vec[T]) with(values []string) T {
	if len(values) != len(v.labels) {
		return v.newT()
	}
	key := strings.Join(values, "\xff")
	v.mu.RLock()
	s, ok := v.series[key]
	v.mu.RUnlock()
	if ok {
		return s
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.series[key]; ok {
		return s
	}
	s = v.newT()
	v.series[key] = s
	v.values[key] = append([]string(nil), values...)
	return s
}

func (v *vec[T]) name() string         { return v.n }
func (v *vec[T]) labelNames() []string { return v.labels }

// each calls fn for every series in a stable order.
func (v *vec[T]) each(fn func(labels string, s T)) {
	v.mu.RLock()
	keys := make([]string, 0, len(v.series))
	for k := range v.series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	type item struct {
		l string
		s T
	}
	items := make([]item, len(keys))
	for i, k := range keys {
		items[i] = item{labelString(v.labels, v.values[k]), v.series[k]}
	}
	v.mu.RUnlock()
	for _, it := range items {
		fn(it.l, it.s)
	}
}

// labelString renders {a="x",b="y"}, or "" without labels.
func labelString(names, values []string) string {
	if len(names) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n + `="` + escapeLabel(values[i]) + `"`)
	}
	b.WriteByte('}')
	return b.String()
}

// withPrefix puts rendered labels (`a="x",b="y"`, from an included
// registry's Labels) in front of an already rendered label string.
func withPrefix(labels, prefix string) string {
	switch {
	case prefix == "":
		return labels
	case labels == "":
		return "{" + prefix + "}"
	}
	return "{" + prefix + "," + labels[1:]
}

// withExtra inserts an extra label into an already rendered label string.
func withExtra(labels, name, value string) string {
	if labels == "" {
		return "{" + name + `="` + value + `"}`
	}
	return labels[:len(labels)-1] + "," + name + `="` + value + `"}`
}

func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// atomicFloat is a float64 updated with compare-and-swap.
type atomicFloat struct{ bits atomic.Uint64 }

func (a *atomicFloat) add(d float64) {
	for {
		old := a.bits.Load()
		if a.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}
func (a *atomicFloat) set(v float64) { a.bits.Store(math.Float64bits(v)) }
func (a *atomicFloat) get() float64  { return math.Float64frombits(a.bits.Load()) }

// Counter only goes up.
type Counter struct{ v atomicFloat }

// Inc adds 1.
func (c *Counter) Inc() { c.v.add(1) }

// Add adds d; negative d is ignored (counters never go down).
func (c *Counter) Add(d float64) {
	if d > 0 {
		c.v.add(d)
	}
}

// Value returns the current count.
func (c *Counter) Value() float64 { return c.v.get() }

// CounterVec is a counter family.
type CounterVec struct{ vec[*Counter] }

// With returns the counter for the label values, in the family's label order.
func (v *CounterVec) With(values ...string) *Counter { return v.with(values) }
func (v *CounterVec) kind() Kind                     { return KindCounter }
func (v *CounterVec) write(b *strings.Builder, prefix string) {
	v.each(func(l string, c *Counter) {
		b.WriteString(v.n + withPrefix(l, prefix) + " " + formatFloat(c.Value()) + "\n")
	})
}

// Gauge goes up and down.
type Gauge struct{ v atomicFloat }

// Set sets the value.
func (g *Gauge) Set(x float64) { g.v.set(x) }

// Add adds d (may be negative).
func (g *Gauge) Add(d float64) { g.v.add(d) }

// Inc adds 1.
func (g *Gauge) Inc() { g.v.add(1) }

// Dec subtracts 1.
func (g *Gauge) Dec() { g.v.add(-1) }

// Value returns the current value.
func (g *Gauge) Value() float64 { return g.v.get() }

// GaugeVec is a gauge family.
type GaugeVec struct{ vec[*Gauge] }

// With returns the gauge for the label values, in the family's label order.
func (v *GaugeVec) With(values ...string) *Gauge { return v.with(values) }
func (v *GaugeVec) kind() Kind                   { return KindGauge }
func (v *GaugeVec) write(b *strings.Builder, prefix string) {
	v.each(func(l string, g *Gauge) {
		b.WriteString(v.n + withPrefix(l, prefix) + " " + formatFloat(g.Value()) + "\n")
	})
}

type gaugeFunc struct {
	n  string
	mu sync.Mutex
	fn func() float64
}

func (g *gaugeFunc) name() string         { return g.n }
func (g *gaugeFunc) kind() Kind           { return KindGauge }
func (g *gaugeFunc) labelNames() []string { return nil }
func (g *gaugeFunc) write(b *strings.Builder, prefix string) {
	g.mu.Lock()
	fn := g.fn
	g.mu.Unlock()
	b.WriteString(g.n + withPrefix("", prefix) + " " + formatFloat(fn()) + "\n")
}

// Histogram counts observations into cumulative buckets.
type Histogram struct {
	bounds []float64
	mu     sync.Mutex
	counts []uint64 // per bucket, not cumulative; last is +Inf
	sum    float64
	count  uint64
}

func newHistogram(bounds []float64) *Histogram {
	return &Histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

// Observe records one value.
func (h *Histogram) Observe(x float64) {
	i := sort.SearchFloat64s(h.bounds, x) // first bound >= x: buckets are "le"
	h.mu.Lock()
	h.counts[i]++
	h.sum += x
	h.count++
	h.mu.Unlock()
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}

// HistogramVec is a histogram family.
type HistogramVec struct{ vec[*Histogram] }

// With returns the histogram for the label values, in the family's label order.
func (v *HistogramVec) With(values ...string) *Histogram { return v.with(values) }
func (v *HistogramVec) kind() Kind                       { return KindHistogram }
func (v *HistogramVec) write(b *strings.Builder, prefix string) {
	v.each(func(l string, h *Histogram) {
		l = withPrefix(l, prefix)
		h.mu.Lock()
		counts := append([]uint64(nil), h.counts...)
		sum, count := h.sum, h.count
		h.mu.Unlock()
		var cum uint64
		for i, bound := range h.bounds {
			cum += counts[i]
			b.WriteString(v.n + "_bucket" + withExtra(l, "le", formatFloat(bound)) + " " + strconv.FormatUint(cum, 10) + "\n")
		}
		b.WriteString(v.n + "_bucket" + withExtra(l, "le", "+Inf") + " " + strconv.FormatUint(count, 10) + "\n")
		b.WriteString(v.n + "_sum" + l + " " + formatFloat(sum) + "\n")
		b.WriteString(v.n + "_count" + l + " " + strconv.FormatUint(count, 10) + "\n")
	})
}
