package console

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func newConsole(t *testing.T) *Console {
	t.Helper()
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func get(t *testing.T, h http.Handler, method, path string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPage(t *testing.T) {
	c := newConsole(t)
	r := get(t, c, "GET", "/")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET /: got %d, want 200", r.StatusCode)
	}
	for k, want := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Cache-Control":           "no-cache",
		"Content-Security-Policy": ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}
	page := body(t, r)
	if strings.Contains(page, placeholder) {
		t.Errorf("the page still has %s", placeholder)
	}
	// Every asset the page names exists at the versioned path.
	refs := regexp.MustCompile(`(?:href|src)="(console/[^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 5 {
		t.Fatalf("got %d asset references in the page, want the stylesheet, icon and modules", len(refs))
	}
	for _, m := range refs {
		if !strings.HasPrefix(m[1], "console/"+c.Version()+"/") {
			t.Errorf("asset %s: want it under console/%s/", m[1], c.Version())
		}
		if r := get(t, c, "GET", "/"+m[1]); r.StatusCode != http.StatusOK {
			t.Errorf("GET /%s: got %d, want 200", m[1], r.StatusCode)
		}
	}
	// No inline script or style (the CSP forbids them).
	for _, bad := range []string{"<script>", "style=", " on", "javascript:"} {
		if bad == " on" {
			if regexp.MustCompile(`\son[a-z]+=`).MatchString(page) {
				t.Error("the page has an inline event handler")
			}
			continue
		}
		if strings.Contains(page, bad) {
			t.Errorf("the page contains %q", bad)
		}
	}
}

// TestModuleImports checks that every ES module import names an embedded
// file, and that the page preloads every module.
func TestModuleImports(t *testing.T) {
	c := newConsole(t)
	page := body(t, get(t, c, "GET", "/"))
	imp := regexp.MustCompile(`(?m)^import .* from '(\.{1,2}/[^']+)';$`)
	for name := range c.files {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		if !strings.Contains(page, `console/`+c.Version()+`/`+name+`"`) {
			t.Errorf("the page does not load or preload %s", name)
		}
		dir := name[:strings.LastIndex(name, "/")+1]
		for _, m := range imp.FindAllStringSubmatch(string(c.files[name].body), -1) {
			target := cleanJoin(dir, m[1])
			if c.files[target] == nil {
				t.Errorf("%s imports %s (%s): no such asset", name, m[1], target)
			}
		}
	}
}

func cleanJoin(dir, rel string) string {
	parts := strings.Split(strings.TrimSuffix(dir, "/"), "/")
	if dir == "" {
		parts = nil
	}
	for _, p := range strings.Split(rel, "/") {
		switch p {
		case ".":
		case "..":
			if len(parts) > 0 {
				parts = parts[:len(parts)-1]
			}
		default:
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "/")
}

func TestAssets(t *testing.T) {
	c := newConsole(t)
	path := AssetPrefix + c.Version() + "/js/app.js"
	r := get(t, c, "GET", path)
	if r.StatusCode != http.StatusOK || r.Header.Get("Cache-Control") != immutable ||
		r.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || r.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("GET %s: got %d %v", path, r.StatusCode, r.Header)
	}
	plain := body(t, r)
	etag := r.Header.Get("ETag")

	// gzip when asked, with its own ETag, the same content.
	r = get(t, c, "GET", path, "Accept-Encoding", "br, gzip;q=0.8")
	if r.Header.Get("Content-Encoding") != "gzip" || r.Header.Get("Vary") != "Accept-Encoding" || r.Header.Get("ETag") == etag {
		t.Fatalf("gzip: got %v", r.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader([]byte(body(t, r))))
	if err != nil {
		t.Fatal(err)
	}
	unz, err := io.ReadAll(zr)
	if err != nil || string(unz) != plain {
		t.Errorf("gunzipped body differs from the plain one (%v)", err)
	}
	if r := get(t, c, "GET", path, "Accept-Encoding", "gzip;q=0"); r.Header.Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0: got Content-Encoding %q, want none", r.Header.Get("Content-Encoding"))
	}

	// Revalidation.
	for _, inm := range []string{etag, `W/` + etag, `"x", ` + etag, "*"} {
		r := get(t, c, "GET", path, "If-None-Match", inm)
		if r.StatusCode != http.StatusNotModified || body(t, r) != "" {
			t.Errorf("If-None-Match %s: got %d, want 304 without a body", inm, r.StatusCode)
		}
	}
	if r := get(t, c, "GET", path, "If-None-Match", `"other"`); r.StatusCode != http.StatusOK {
		t.Errorf("If-None-Match other: got %d, want 200", r.StatusCode)
	}
	if r := get(t, c, "HEAD", path); r.StatusCode != http.StatusOK || r.Header.Get("Content-Length") == "" {
		t.Errorf("HEAD: got %d, Content-Length %q", r.StatusCode, r.Header.Get("Content-Length"))
	}

	// Misses are never cached: another version, no file, a directory.
	for _, p := range []string{AssetPrefix + "0123456789abcdef/js/app.js", AssetPrefix + c.Version() + "/nope.js", AssetPrefix + c.Version() + "/js", AssetPrefix + c.Version() + "/index.html", AssetPrefix} {
		r := get(t, c, "GET", p)
		if r.StatusCode != http.StatusNotFound || r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s: got %d %q, want 404 no-store", p, r.StatusCode, r.Header.Get("Cache-Control"))
		}
	}
	if r := get(t, c, "POST", "/"); r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: got %d, want 405 with Allow", r.StatusCode)
	}
}

// TestVersion: the asset version changes with any asset's content.
func TestVersion(t *testing.T) {
	mk := func(js string) *Console {
		c, err := newFromFS(fstest.MapFS{
			"a/index.html": {Data: []byte(`<script type="module" src="{{ASSETS}}/app.js"></script>`)},
			"a/app.js":     {Data: []byte(js)},
		}, "a")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c1, c2, c3 := mk("let a = 1;"), mk("let a = 1;"), mk("let a = 2;")
	if c1.Version() != c2.Version() || c1.Version() == c3.Version() {
		t.Errorf("versions %s %s %s: want the same for the same assets, another for others", c1.Version(), c2.Version(), c3.Version())
	}
	if got := body(t, get(t, c1, "GET", "/")); !strings.Contains(got, `src="console/`+c1.Version()+`/app.js"`) {
		t.Errorf("page: got %s", got)
	}
	if _, err := newFromFS(fstest.MapFS{"a/app.js": {Data: []byte("x")}}, "a"); err == nil {
		t.Error("assets without index.html: got no error")
	}
	if _, err := newFromFS(fstest.MapFS{"a/index.html": {}, "a/x.unknownext": {}}, "a"); err == nil {
		t.Error("an asset of unknown type: got no error")
	}
}

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want bool
	}{
		{nil, false},
		{[]string{"gzip"}, true},
		{[]string{"deflate, GZIP"}, true},
		{[]string{"br;q=1.0, gzip;q=0.5"}, true},
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip; q=0.000"}, false},
		{[]string{"*"}, true},
		{[]string{"identity"}, false},
		{[]string{"x-gzip"}, false},
	} {
		if got := acceptsGzip(tc.in); got != tc.want {
			t.Errorf("acceptsGzip(%q): got %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestAssetsSmall keeps the console within the page-weight budget
// before compression (the browser test measures the transfer).
func TestAssetsSmall(t *testing.T) {
	total := 0
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(assets, p)
		total += len(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("assets: %d bytes uncompressed", total)
	if total > 300<<10 {
		t.Errorf("assets are %d bytes, want under 300 KiB even uncompressed", total)
	}
}
