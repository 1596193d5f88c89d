// Package console serves the mesh's web console: a few static files (plain
// ES modules, one stylesheet, no build step) embedded in the binary and
// mounted at / on the REST port of the router and of `bitnet up`. The
// browser side talks to the mesh only through the public REST API (the
// same routes users call, from one client module, assets/js/api.js), so
// it works wherever that API works, with the same API keys.
//
// Routes (they never collide with the API, which lives under /v1/):
//
//	GET /                          the page (index.html), revalidated on every load
//	GET /console/VERSION/PATH      an asset; VERSION is a hash of all the assets,
//	                               so these are cached for a year, immutable
//
// Every response carries a strict Content-Security-Policy (default-src
// 'self', no inline script or style, no eval, no framing), nosniff and
// no-referrer; every file has a strong ETag (sha256 of its content) and a
// gzip variant computed once at New. Pages are addressed by the URL
// fragment (#/models/NAME), so the server has a single document to serve.
//
// Hand-written instead of http.FileServer: the file server has no
// immutable caching, content hashes, precompression or security headers,
// and it lists directories.
package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sort"
	"strings"

	"github.com/bitnet-mesh/bitnet-mesh/shared/server"
)

//go:embed assets
var assets embed.FS

// AssetPrefix is the path under which the assets are served, followed by
// the version hash.
const AssetPrefix = "/console/"

// Headers every console response carries.
const (
	// ContentSecurityPolicy allows only this origin's scripts, styles,
	// images and API calls: no inline code, no eval, no plugins, no framing.
	ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	immutable   = "public, max-age=31536000, immutable"
	revalidate  = "no-cache"
	placeholder = "{{ASSETS}}" // in index.html: replaced by "console/VERSION"
)

// file is one servable file, ready to send.
type file struct {
	body, gz  []byte // gz is nil when compression does not pay
	etag      string
	mediaType string
}

// Console is the web console's HTTP handler. Build it with New.
type Console struct {
	version string           // hash of every asset
	index   *file            // the page
	files   map[string]*file // by path below the version
}

// New reads the embedded assets, fills in the page's asset paths and
// compresses what compresses.
func New() (*Console, error) {
	return newFromFS(assets, "assets")
}

func newFromFS(fsys fs.FS, root string) (*Console, error) {
	sub, err := fs.Sub(fsys, root)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	raw := map[string][]byte{}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		raw[p] = b
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("console: reading assets: %w", err)
	}
	page, ok := raw["index.html"]
	if !ok {
		return nil, fmt.Errorf("console: no index.html in the assets")
	}
	delete(raw, "index.html")

	// The version covers every asset's path and content, in path order.
	names := make([]string, 0, len(raw))
	for p := range raw {
		names = append(names, p)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, p := range names {
		sum := sha256.Sum256(raw[p])
		fmt.Fprintf(h, "%s %x\n", p, sum)
	}
	c := &Console{version: hex.EncodeToString(h.Sum(nil))[:16], files: map[string]*file{}}
	for _, p := range names {
		if c.files[p], err = newFile(p, raw[p]); err != nil {
			return nil, err
		}
	}
	page = bytes.ReplaceAll(page, []byte(placeholder), []byte(strings.TrimPrefix(AssetPrefix, "/")+c.version))
	if c.index, err = newFile("index.html", page); err != nil {
		return nil, err
	}
	return c, nil
}

func newFile(name string, body []byte) (*file, error) {
	mt := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) { // not left to the host's mime tables
	case ".js":
		mt = "text/javascript; charset=utf-8"
	case ".css":
		mt = "text/css; charset=utf-8"
	case ".html":
		mt = "text/html; charset=utf-8"
	case ".svg":
		mt = "image/svg+xml"
	case ".png":
		mt = "image/png"
	}
	if mt == "" {
		return nil, fmt.Errorf("console: asset %s: unknown media type", name)
	}
	sum := sha256.Sum256(body)
	f := &file{body: body, etag: `"` + hex.EncodeToString(sum[:16]) + `"`, mediaType: mt}
	if !strings.HasPrefix(mt, "image/png") && len(body) > 512 {
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			return nil, fmt.Errorf("console: %w", err)
		}
		_, _ = zw.Write(body) // a bytes.Buffer does not fail
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("console: compressing %s: %w", name, err)
		}
		if buf.Len() < len(body)*9/10 {
			f.gz = buf.Bytes()
		}
	}
	return f, nil
}

// Version is the hash in the asset paths; it changes whenever an asset does.
func (c *Console) Version() string { return c.version }

// ServerOptions mounts the console on a shared/server Server's HTTP port,
// beside the REST gateway.
func (c *Console) ServerOptions() []server.Option {
	return []server.Option{
		server.WithHTTPHandler("GET /{$}", c),
		server.WithHTTPHandler("GET "+AssetPrefix, c),
	}
}

// ServeHTTP serves the page at / and the assets below AssetPrefix.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path == "/" {
		c.send(w, r, c.index, revalidate)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, AssetPrefix+c.version+"/")
	f := c.files[rest]
	if !ok || f == nil {
		// An asset of another version (a page loaded before an upgrade)
		// or no asset at all: never cache the miss.
		h.Set("Cache-Control", "no-store")
		http.Error(w, "not found: reload the page", http.StatusNotFound)
		return
	}
	c.send(w, r, f, immutable)
}

// send writes f, gzipped when the client takes it, or 304 when the client
// has it already.
func (c *Console) send(w http.ResponseWriter, r *http.Request, f *file, cache string) {
	h := w.Header()
	h.Set("Cache-Control", cache)
	h.Set("Content-Type", f.mediaType)
	body, etag := f.body, f.etag
	if f.gz != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Values("Accept-Encoding")) {
			body, etag = f.gz, strings.TrimSuffix(f.etag, `"`)+`-gz"`
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", etag)
	if etagMatches(r.Header.Values("If-None-Match"), etag) {
		h.Del("Content-Type")
		h.Del("Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// acceptsGzip reads Accept-Encoding values: gzip (or *) with a non-zero q.
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			if coding != "gzip" && coding != "*" {
				continue
			}
			q := strings.ReplaceAll(strings.ToLower(params), " ", "")
			if q == "q=0" || q == "q=0.0" || q == "q=0.00" || q == "q=0.000" {
				continue
			}
			return true
		}
	}
	return false
}

// etagMatches reads If-None-Match values (a list, or *), comparing weakly
// as RFC 9110 says for If-None-Match.
func etagMatches(values []string, etag string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
			if t == "*" || t == etag {
				return true
			}
		}
	}
	return false
}
