package jinja

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// TestSnippets renders small templates covering the language and compares
// with Jinja2's output (testdata/snippets.json, written by
// tools/chat-template-golden/golden.py).
func TestSnippets(t *testing.T) {
	data, err := os.ReadFile("testdata/snippets.json")
	if err != nil {
		t.Fatal(err)
	}
	var snippets []struct {
		Src   string          `json:"src"`
		Vars  json.RawMessage `json:"vars"`
		Want  *string         `json:"want"`
		Error string          `json:"error"`
	}
	if err := json.Unmarshal(data, &snippets); err != nil {
		t.Fatal(err)
	}
	for _, sn := range snippets {
		vars := map[string]any{}
		v, err := DecodeJSON(sn.Vars)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range v.(*Dict).Keys() {
			vars[k], _ = v.(*Dict).Get(k)
		}
		tmpl, err := Parse(sn.Src)
		if err != nil {
			t.Errorf("%q: parse: %v", sn.Src, err)
			continue
		}
		got, err := tmpl.Render(vars)
		switch {
		case sn.Want == nil && err == nil:
			t.Errorf("%q: got %q, want an error like %s", sn.Src, got, sn.Error)
		case sn.Want != nil && err != nil:
			t.Errorf("%q: %v, want %q", sn.Src, err, *sn.Want)
		case sn.Want != nil && got != *sn.Want:
			t.Errorf("%q:\ngot  %q\nwant %q", sn.Src, got, *sn.Want)
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"{% if x %}", "missing 'endif'"},
		{"{{ x", "unclosed tag"},
		{"{% for %}", "expected a name"},
		{"{% include 'x' %}", "unsupported statement 'include'"},
		{"{{ x | nosuch }}", "unsupported filter 'nosuch'"},
		{"{{ x is nosuch }}", "unsupported test 'nosuch'"},
		{"{{ 'a' + 1 }}", "line 1: unsupported operand types for +: str and int"},
		{"\n\n{{ raise_exception('bad conversation') }}", "bad conversation"},
		{"{% for i in range(10**7) %}{% endfor %}", "range() longer than"},
		{"{% for i in range(100000) %}{% for j in range(100) %}{% endfor %}{% endfor %}", "steps"},
		{"{% set s = 'xxxxxxxxxxxxxxxx' %}{% for i in range(100000) %}{{ s * 10 }}{% endfor %}", "bytes of output"},
		{"{% break %}", "break or continue outside a loop"},
		{"{{ undefined_fn() }}", "undefined_fn is undefined"},
	}
	for _, tt := range tests {
		tmpl, err := Parse(tt.src)
		if err == nil {
			_, err = tmpl.Render(nil)
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want an error with %q", tt.src, err, tt.want)
		}
	}
}

func TestStrftimeNow(t *testing.T) {
	tmpl, err := Parse(`{{ strftime_now("%d %b %Y") }}`, Options{Now: func() time.Time { return time.Date(2024, 7, 26, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tmpl.Render(nil); err != nil || got != "26 Jul 2024" {
		t.Errorf("got %q, %v; want 26 Jul 2024", got, err)
	}
}

// FuzzRender parses and renders arbitrary templates: errors are fine,
// panics and runaway renders are not (the step and output bounds hold).
func FuzzRender(f *testing.F) {
	for _, s := range []string{
		"{% for m in messages %}{{ m.role | capitalize }}: {{ m.content | trim }}{% endfor %}",
		"{{ [1,2][::-1] }}{% set ns = namespace(a=1) %}{% set ns.a = 2 %}{{ ns.a }}",
		"{%- if x is defined and x is not none -%}{{ x | tojson(indent=2) }}{%- endif %}",
		"{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1) }}{{ 'a' if b else 'c' }}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		tmpl, err := Parse(src, Options{MaxSteps: 10000, MaxOutput: 1 << 16})
		if err != nil {
			return
		}
		_, _ = tmpl.Render(map[string]any{"messages": []any{map[string]any{"role": "user", "content": "hi"}}, "x": 1})
	})
}
