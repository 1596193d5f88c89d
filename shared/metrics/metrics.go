// Package metrics is a small Prometheus client: counters, gauges and
// histograms with labels, kept in a Registry and served in the Prometheus
// text exposition format (version 0.0.4) by Registry.Handler.
//
// It is hand-written to keep the dependency set small; it covers what the
// mesh exports (request counts, latency histograms, tokens/s, queue depth,
// loaded models), not the whole client_golang API.
//
// Families are get-or-create: asking a Registry twice for the same name, kind
// and label names returns the same family, so several services in one
// process may share a Registry. A Registry may also Include others, so that
// servers keeping registries of their own are scraped at one endpoint.
package metrics

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
)

var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// Kind is a metric family's type.
type Kind string

// The kinds, named as in the exposition format's TYPE lines.
const (
	KindCounter   Kind = "counter"
	KindGauge     Kind = "gauge"
	KindHistogram Kind = "histogram"
)

// family is what a Registry stores: one metric name with its series.
type family interface {
	name() string
	kind() Kind
	labelNames() []string
	write(b *strings.Builder, prefix string)
}

// Registry holds metric families and writes them out. The zero value is not
// usable; call NewRegistry.
type Registry struct {
	mu       sync.Mutex
	families map[string]family
	help     map[string]string
	includes []included
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{families: map[string]family{}, help: map[string]string{}}
}

func (r *Registry) lookup(name, help string, kind Kind, labels []string, create func() family) (family, error) {
	if !metricName.MatchString(name) {
		return nil, fmt.Errorf("metrics: invalid metric name %q", name)
	}
	for _, l := range labels {
		if !labelName.MatchString(l) || strings.HasPrefix(l, "__") || l == "le" {
			return nil, fmt.Errorf("metrics: metric %q: invalid label name %q", name, l)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.families[name]; ok {
		if f.kind() != kind || !slices.Equal(f.labelNames(), labels) {
			return nil, fmt.Errorf("metrics: metric %q already registered as %s%v, asked for %s%v",
				name, f.kind(), f.labelNames(), kind, labels)
		}
		return f, nil
	}
	f := create()
	r.families[name] = f
	r.help[name] = help
	return f, nil
}

// Counter returns the counter family name with the given label names,
// creating it on first use.
func (r *Registry) Counter(name, help string, labels ...string) (*CounterVec, error) {
	f, err := r.lookup(name, help, KindCounter, labels, func() family {
		return &CounterVec{vec: newVec[*Counter](name, labels, func() *Counter { return &Counter{} })}
	})
	if err != nil {
		return nil, err
	}
	return f.(*CounterVec), nil
}

// Gauge returns the gauge family name with the given label names, creating it
// on first use.
func (r *Registry) Gauge(name, help string, labels ...string) (*GaugeVec, error) {
	f, err := r.lookup(name, help, KindGauge, labels, func() family {
		return &GaugeVec{vec: newVec[*Gauge](name, labels, func() *Gauge { return &Gauge{} })}
	})
	if err != nil {
		return nil, err
	}
	return f.(*GaugeVec), nil
}

// GaugeFunc registers an unlabelled gauge whose value is read from fn at
// every scrape (e.g. a queue's length). fn must be safe for concurrent use.
// A second registration of the same name replaces fn.
func (r *Registry) GaugeFunc(name, help string, fn func() float64) error {
	if fn == nil {
		return fmt.Errorf("metrics: gauge func %q: nil func", name)
	}
	f, err := r.lookup(name, help, KindGauge, nil, func() family { return &gaugeFunc{n: name} })
	if err != nil {
		return err
	}
	gf, ok := f.(*gaugeFunc)
	if !ok {
		return fmt.Errorf("metrics: metric %q already registered as a plain gauge", name)
	}
	gf.mu.Lock()
	gf.fn = fn
	gf.mu.Unlock()
	return nil
}

// Histogram returns the histogram family name with the given upper bucket
// bounds (sorted, without +Inf; nil means DefBuckets) and label names,
// creating it on first use.
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) (*HistogramVec, error) {
	if buckets == nil {
		buckets = DefBuckets
	}
	if len(buckets) == 0 || !sort.Float64sAreSorted(buckets) {
		return nil, fmt.Errorf("metrics: histogram %q: buckets %v must be non-empty and sorted", name, buckets)
	}
	b := slices.Clone(buckets)
	f, err := r.lookup(name, help, KindHistogram, labels, func() family {
		return &HistogramVec{vec: newVec[*Histogram](name, labels, func() *Histogram { return newHistogram(b) })}
	})
	if err != nil {
		return nil, err
	}
	return f.(*HistogramVec), nil
}

// WriteText writes every family, its own and those of included registries,
// in the text exposition format, sorted by name.
func (r *Registry) WriteText() string {
	byName := map[string][]entry{}
	r.gather(nil, map[*Registry]bool{}, byName)
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)

	var b strings.Builder
	for _, n := range names {
		es := byName[n]
		first := es[0]
		help := first.help
		for _, e := range es[1:] {
			if help == "" && e.f.kind() == first.f.kind() {
				help = e.help
			}
		}
		if help != "" {
			fmt.Fprintf(&b, "# HELP %s %s\n", n, escapeHelp(help))
		}
		fmt.Fprintf(&b, "# TYPE %s %s\n", n, first.f.kind())
		for _, e := range es {
			if e.f.kind() == first.f.kind() { // a clashing kind is left out
				e.f.write(&b, e.prefix)
			}
		}
	}
	return b.String()
}

// ContentType is the media type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Handler serves the registry for Prometheus scrapes.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ContentType)
		_, _ = w.Write([]byte(r.WriteText()))
	})
}

func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(s)
}
