// Package metrics is the mesh's Prometheus registry: a
// prometheus/client_golang Registry with the Go and process collectors,
// served in the Prometheus and OpenMetrics formats by Handler, that may
// carry the series of other registries (Include) so that two servers of one
// process are scraped at one /metrics.
//
// Collectors are the client_golang ones (CounterVec, HistogramVec, ...),
// registered with Register, which is get-or-create: registering a collector
// that describes the same series as one already there returns the existing
// one, so several services of one process may share a Registry.
package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
)

// Registry is a Prometheus registry with the Go and process collectors.
// The zero value is not usable; call NewRegistry.
type Registry struct {
	reg *prometheus.Registry

	mu       sync.Mutex
	includes []included
	funcs    map[string]*funcGauge
}

// Label is a label name and value that Include adds to every series of an
// included registry.
type Label struct{ Name, Value string }

type included struct {
	sub    *Registry
	labels []*dto.LabelPair
}

// NewRegistry returns a registry holding the Go runtime (go_*) and process
// (process_*) collectors.
func NewRegistry() *Registry {
	r := &Registry{reg: prometheus.NewRegistry(), funcs: map[string]*funcGauge{}}
	r.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return r
}

// Registerer returns the registry to register collectors on (promauto.With
// takes it too). Prefer Register, which returns an existing twin.
func (r *Registry) Registerer() prometheus.Registerer { return r.reg }

// Register registers c on r and returns it, or the collector already
// registered for the same series (AlreadyRegisteredError), so that two
// services of one process share one family. Any other error (a name or
// label clash) is returned.
func Register[C prometheus.Collector](r *Registry, c C) (C, error) {
	err := r.reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	var zero C
	return zero, fmt.Errorf("metrics: register: %w", err)
}

// GaugeFunc registers an unlabelled gauge whose value is read from fn at
// every scrape (e.g. a queue's length). fn must be safe for concurrent use.
// A second registration of the same name replaces fn (the newest server
// owning it reports it).
func (r *Registry) GaugeFunc(opts prometheus.GaugeOpts, fn func() float64) error {
	if fn == nil {
		return fmt.Errorf("metrics: gauge func %q: nil func", opts.Name)
	}
	name := prometheus.BuildFQName(opts.Namespace, opts.Subsystem, opts.Name)
	r.mu.Lock()
	defer r.mu.Unlock()
	if g, ok := r.funcs[name]; ok {
		g.set(fn)
		return nil
	}
	g := &funcGauge{fn: fn}
	if err := r.reg.Register(prometheus.NewGaugeFunc(opts, g.value)); err != nil {
		return fmt.Errorf("metrics: gauge func %q: %w", name, err)
	}
	r.funcs[name] = g
	return nil
}

type funcGauge struct {
	mu sync.Mutex
	fn func() float64
}

func (g *funcGauge) set(fn func() float64) { g.mu.Lock(); g.fn = fn; g.mu.Unlock() }
func (g *funcGauge) value() float64 {
	g.mu.Lock()
	fn := g.fn
	g.mu.Unlock()
	return fn()
}

// Include makes r's exposition also carry every family of sub, now and as
// it changes, with labels added to each of sub's series (e.g. node="local")
// unless the series has that label already. A process has one runtime, so
// sub's go_* and process_* families are left out (r reports them). A family
// both registries define must have the same type and help.
func (r *Registry) Include(sub *Registry, labels ...Label) error {
	if sub == nil {
		return fmt.Errorf("metrics: include: nil registry")
	}
	seen := map[string]bool{}
	pairs := make([]*dto.LabelPair, 0, len(labels))
	for _, l := range labels {
		if !modelLabelName(l.Name) || l.Name == "le" || l.Name == "quantile" {
			return fmt.Errorf("metrics: include: invalid label name %q", l.Name)
		}
		if seen[l.Name] {
			return fmt.Errorf("metrics: include: label %q given twice", l.Name)
		}
		seen[l.Name] = true
		pairs = append(pairs, &dto.LabelPair{Name: proto.String(l.Name), Value: proto.String(l.Value)})
	}
	if sub == r || sub.reaches(r, map[*Registry]bool{}) {
		return fmt.Errorf("metrics: include: the registry already includes this one (a cycle)")
	}
	r.mu.Lock()
	r.includes = append(r.includes, included{sub: sub, labels: pairs})
	r.mu.Unlock()
	return nil
}

// reaches reports whether target is r or included by r, directly or not.
func (r *Registry) reaches(target *Registry, seen map[*Registry]bool) bool {
	if r == target {
		return true
	}
	if seen[r] {
		return false
	}
	seen[r] = true
	r.mu.Lock()
	subs := slices.Clone(r.includes)
	r.mu.Unlock()
	for _, in := range subs {
		if in.sub.reaches(target, seen) {
			return true
		}
	}
	return false
}

// Gather implements prometheus.Gatherer: r's families and those of the
// registries it includes, merged and checked by prometheus.Gatherers.
func (r *Registry) Gather() ([]*dto.MetricFamily, error) {
	r.mu.Lock()
	subs := slices.Clone(r.includes)
	r.mu.Unlock()
	gs := prometheus.Gatherers{r.reg}
	for _, in := range subs {
		gs = append(gs, labelled{in})
	}
	return gs.Gather()
}

// labelled gathers an included registry with its labels added.
type labelled struct{ in included }

func (l labelled) Gather() ([]*dto.MetricFamily, error) {
	fams, err := l.in.sub.Gather()
	out := fams[:0]
	for _, f := range fams {
		if n := f.GetName(); strings.HasPrefix(n, "go_") || strings.HasPrefix(n, "process_") {
			continue
		}
		for _, m := range f.Metric {
			for _, p := range l.in.labels {
				if !slices.ContainsFunc(m.Label, func(q *dto.LabelPair) bool { return q.GetName() == p.GetName() }) {
					m.Label = append(m.Label, p)
				}
			}
			slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
		}
		out = append(out, f)
	}
	return out, err
}

// Handler serves the registry for Prometheus scrapes (text or OpenMetrics,
// as the scraper asks; gzip when accepted). A collector's error leaves its
// series out rather than failing the scrape.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}

// Text returns the registry's exposition in the Prometheus text format (as
// a scrape without OpenMetrics gets it), for tests and debugging.
func (r *Registry) Text() (string, error) {
	fams, err := r.Gather()
	var b strings.Builder
	for _, f := range fams {
		if _, werr := expfmt.MetricFamilyToText(&b, f); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		return b.String(), fmt.Errorf("metrics: gather: %w", err)
	}
	return b.String(), nil
}

// modelLabelName reports whether s is a valid, non-reserved label name.
func modelLabelName(s string) bool {
	if s == "" || strings.HasPrefix(s, "__") {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
