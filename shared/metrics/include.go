package metrics

import (
	"fmt"
	"sort"
	"strings"
)

// Label is a label name and value that Include adds to every series of an
// included registry.
type Label struct{ Name, Value string }

type included struct {
	sub    *Registry
	labels []Label
}

// Include makes r's exposition also carry every family of sub, now and as it
// changes, with labels in front of each of sub's series (e.g. node="local"),
// so that two servers of one process can be scraped at one /metrics while
// each keeps its own Registry and its own series.
//
// A family name both registries define is written once: r's HELP and TYPE,
// then r's series, then sub's. Where the kinds differ, sub's family is left
// out. A family that already has one of the label names keeps its own value
// for it. Without labels, families both define must not have series with the
// same label values (the exposition would repeat them).
func (r *Registry) Include(sub *Registry, labels ...Label) error {
	if sub == nil {
		return fmt.Errorf("metrics: include: nil registry")
	}
	seen := map[string]bool{}
	for _, l := range labels {
		if !labelName.MatchString(l.Name) || strings.HasPrefix(l.Name, "__") || l.Name == "le" {
			return fmt.Errorf("metrics: include: invalid label name %q", l.Name)
		}
		if seen[l.Name] {
			return fmt.Errorf("metrics: include: label %q given twice", l.Name)
		}
		seen[l.Name] = true
	}
	if sub == r || sub.reaches(r, map[*Registry]bool{}) {
		return fmt.Errorf("metrics: include: the registry already includes this one (a cycle)")
	}
	r.mu.Lock()
	r.includes = append(r.includes, included{sub: sub, labels: append([]Label(nil), labels...)})
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
	subs := append([]included(nil), r.includes...)
	r.mu.Unlock()
	for _, in := range subs {
		if in.sub.reaches(target, seen) {
			return true
		}
	}
	return false
}

// entry is one registry's family with the labels its series get in front.
type entry struct {
	f      family
	help   string
	prefix string
}

// gather collects the families of r and of what it includes, by name, r's
// first; path guards against a cycle made by concurrent Includes.
func (r *Registry) gather(labels []Label, path map[*Registry]bool, out map[string][]entry) {
	if path[r] {
		return
	}
	path[r] = true
	defer delete(path, r)
	r.mu.Lock()
	fams := make([]entry, 0, len(r.families))
	for n, f := range r.families {
		fams = append(fams, entry{f: f, help: r.help[n]})
	}
	subs := append([]included(nil), r.includes...)
	r.mu.Unlock()
	sort.Slice(fams, func(i, j int) bool { return fams[i].f.name() < fams[j].f.name() })
	for _, e := range fams {
		e.prefix = renderPrefix(labels, e.f.labelNames())
		out[e.f.name()] = append(out[e.f.name()], e)
	}
	for _, in := range subs {
		in.sub.gather(append(append([]Label(nil), labels...), in.labels...), path, out)
	}
}

// renderPrefix renders labels as `a="x",b="y"`, without those whose name
// the family uses itself (or an outer Include already set).
func renderPrefix(labels []Label, own []string) string {
	var b strings.Builder
	used := map[string]bool{}
	for _, n := range own {
		used[n] = true
	}
	for _, l := range labels {
		if used[l.Name] {
			continue
		}
		used[l.Name] = true
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.Name + `="` + escapeLabel(l.Value) + `"`)
	}
	return b.String()
}
