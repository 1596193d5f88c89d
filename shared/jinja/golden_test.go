package jinja

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files from the Go engine (prefer tools/chat-template-golden/golden.py, which uses Jinja2)")

// TestRealTemplates renders the real chat templates in testdata/templates for
// every conversation in testdata/cases.json and compares with the renders of
// Python's Jinja2 (testdata/golden). A golden "ERROR: msg" expects a render
// error; for raise_exception the message must match.
func TestRealTemplates(t *testing.T) {
	data, err := os.ReadFile("testdata/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := DecodeJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	root := spec.(*Dict)
	toks, _ := root.Get("tokens")
	cases, _ := root.Get("cases")
	for _, name := range toks.(*Dict).Keys() {
		src, err := os.ReadFile(filepath.Join("testdata", "templates", name+".jinja"))
		if err != nil {
			t.Fatal(err)
		}
		tmpl, err := Parse(string(src))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tt, _ := toks.(*Dict).Get(name)
		for _, c := range cases.([]any) {
			c := c.(*Dict)
			caseName, _ := c.Get("name")
			vars := map[string]any{}
			for _, k := range tt.(*Dict).Keys() {
				vars[k], _ = tt.(*Dict).Get(k)
			}
			for _, k := range []string{"messages", "add_generation_prompt", "tools"} {
				if v, ok := c.Get(k); ok {
					vars[k] = v
				}
			}
			if extra, ok := c.Get("vars"); ok {
				for _, k := range extra.(*Dict).Keys() {
					vars[k], _ = extra.(*Dict).Get(k)
				}
			}
			got, renderErr := tmpl.Render(vars)
			if renderErr != nil {
				got = "ERROR: " + renderErr.Error()
			}
			path := filepath.Join("testdata", "golden", name+"."+caseName.(string)+".txt")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			wantB, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want := string(wantB)
			if wantErr, ok := strings.CutPrefix(want, "ERROR: "); ok {
				var re *RaiseError
				switch {
				case renderErr == nil:
					t.Errorf("%s/%s: got %q, want an error like %q", name, caseName, got, wantErr)
				case errors.As(renderErr, &re) && re.Message != wantErr:
					t.Errorf("%s/%s: got raise_exception(%q), want %q", name, caseName, re.Message, wantErr)
				}
				continue
			}
			if got != want {
				t.Errorf("%s/%s:\ngot  %q\nwant %q", name, caseName, got, want)
			}
		}
	}
}
