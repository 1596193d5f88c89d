package auth

import (
	"fmt"
	"slices"
	"strings"
)

// Scope is what a key may do. Each RPC needs one scope (see Policy); admin
// implies every other.
type Scope string

// The scopes of the mesh.
const (
	// ScopeRead reads models, versions, nodes, status and jobs.
	ScopeRead Scope = "read"
	// ScopeGenerate generates and tokenizes (and the OpenAI-compatible routes).
	ScopeGenerate Scope = "generate"
	// ScopeWrite pushes and deletes models and versions and moves aliases.
	ScopeWrite Scope = "write"
	// ScopeJobs starts and cancels quantize and training jobs.
	ScopeJobs Scope = "jobs"
	// ScopeAdmin manages keys, loads and unloads models, and does everything
	// the other scopes do.
	ScopeAdmin Scope = "admin"
)

// AllScopes lists every scope, in a fixed order.
func AllScopes() []Scope {
	return []Scope{ScopeRead, ScopeGenerate, ScopeWrite, ScopeJobs, ScopeAdmin}
}

// ParseScope checks one scope name (case-insensitive).
func ParseScope(s string) (Scope, error) {
	want := Scope(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(AllScopes(), want) {
		return want, nil
	}
	return "", fmt.Errorf("unknown scope %q, want read, generate, write, jobs or admin", s)
}

// Scopes is a set of scopes, kept sorted in AllScopes order without
// duplicates by ParseScopes and NewScopes.
type Scopes []Scope

// NewScopes checks names and returns them as a set in AllScopes order.
func NewScopes(names ...string) (Scopes, error) {
	seen := map[Scope]bool{}
	for _, n := range names {
		s, err := ParseScope(n)
		if err != nil {
			return nil, err
		}
		seen[s] = true
	}
	var out Scopes
	for _, s := range AllScopes() {
		if seen[s] {
			out = append(out, s)
		}
	}
	return out, nil
}

// ParseScopes parses a comma-separated list such as "generate,read"; it
// needs at least one scope.
func ParseScopes(list string) (Scopes, error) {
	var names []string
	for _, n := range strings.Split(list, ",") {
		if strings.TrimSpace(n) != "" {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no scopes in %q, want a comma-separated list of read, generate, write, jobs, admin", list)
	}
	return NewScopes(names...)
}

// Has reports whether the set grants want: it holds want or admin.
func (s Scopes) Has(want Scope) bool {
	return slices.Contains(s, want) || slices.Contains(s, ScopeAdmin)
}

// Strings returns the scope names.
func (s Scopes) Strings() []string {
	out := make([]string, len(s))
	for i, sc := range s {
		out[i] = string(sc)
	}
	return out
}

// String joins the names with commas.
func (s Scopes) String() string { return strings.Join(s.Strings(), ",") }
