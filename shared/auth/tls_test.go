package auth

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	authv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/auth/v1"
	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/certs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/errcode"
)

// meshTLS makes a dev CA in a temporary directory and returns its files
// and a foreign CA's client certificate files.
func meshTLS(t *testing.T) (certs.DevFiles, certs.Files) {
	t.Helper()
	dir := t.TempDir()
	files, err := certs.WriteDev(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := certs.NewCA("foreign", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := foreign.Issue("intruder", nil, certs.ServerAndClient, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f := certs.Files{CA: files.CA, Cert: filepath.Join(dir, "foreign.crt"), Key: filepath.Join(dir, "foreign.key")}
	if err := leaf.Write(f.Cert, f.Key); err != nil {
		t.Fatal(err)
	}
	return files, f
}

func clientCreds(t *testing.T, f certs.Files) credentials.TransportCredentials {
	t.Helper()
	cfg, err := f.Client()
	if err != nil {
		t.Fatal(err)
	}
	return credentials.NewTLS(cfg)
}

// TestMTLS: with mTLS required, a caller needs a mesh client certificate
// (health checks excepted); a certificate from another CA fails the
// handshake; a certificate alone grants the service scopes, a key decides
// when sent.
func TestMTLS(t *testing.T) {
	dev, foreign := meshTLS(t)
	srvTLS, err := certs.Files{Cert: dev.ServerCert, Key: dev.ServerKey, ClientCA: dev.CA}.Server()
	if err != nil {
		t.Fatal(err)
	}
	src := newMemSource()
	reader := src.add(t, "reader", Scopes{ScopeRead}, Limits{}, time.Time{})
	g, err := NewGuard(WithKeys(newSyncedTable(t, src)), WithClientCertRequired())
	if err != nil {
		t.Fatal(err)
	}
	addr := startGuarded(t, g, &anyService{}, srvTLS)
	ctx := context.Background()
	noCert := dialConn(t, addr, clientCreds(t, certs.Files{CA: dev.CA}))
	meshCert := dialConn(t, addr, clientCreds(t, certs.Files{CA: dev.CA, Cert: dev.ClientCert, Key: dev.ClientKey}))
	intruder := dialConn(t, addr, clientCreds(t, foreign))
	const list, create = inferencev1.InferenceService_ListModels_FullMethodName, authv1.KeyService_CreateKey_FullMethodName
	for _, tc := range []struct {
		name   string
		err    error
		want   codes.Code
		substr string
	}{
		{"no certificate, health", call(ctx, noCert, healthpb.Health_Check_FullMethodName, ""), codes.OK, ""},
		{"no certificate, valid key", call(ctx, noCert, list, reader), codes.Unauthenticated, "client certificate"},
		{"mesh certificate, no key, read", call(ctx, meshCert, list, ""), codes.OK, ""},
		{"mesh certificate, no key, admin", call(ctx, meshCert, create, ""), codes.PermissionDenied, `scope "admin"`},
		{"mesh certificate, read key, admin", call(ctx, meshCert, create, reader), codes.PermissionDenied, "key"},
		{"foreign CA certificate", call(ctx, intruder, list, reader), codes.Unavailable, ""},
	} {
		if got := status.Code(tc.err); got != tc.want || !strings.Contains(status.Convert(tc.err).Message(), tc.substr) {
			t.Errorf("%s: got %v, want %v containing %q", tc.name, tc.err, tc.want, tc.substr)
		}
	}
}

func TestHTTPHandler(t *testing.T) {
	src := newMemSource()
	gen := src.add(t, "gen", Scopes{ScopeGenerate}, Limits{RequestsPerSecond: 0.1, Burst: 1}, time.Time{})
	reader := src.add(t, "reader", Scopes{ScopeRead}, Limits{}, time.Time{})
	g, err := NewGuard(WithKeys(newSyncedTable(t, src)))
	if err != nil {
		t.Fatal(err)
	}
	var seen *Principal
	h := g.Handler(Route{Scope: ScopeGenerate, Stream: true}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = FromContext(r.Context())
		_, _ = io.WriteString(w, "ok")
	}))
	mux := http.NewServeMux()
	mux.Handle("POST /v1/chat/completions", h)
	mux.Handle("GET /metrics", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "metrics") }))
	mux.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	srv := httptest.NewServer(g.Middleware(mux))
	defer srv.Close()

	do := func(method, path, key string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	type body struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	for _, tc := range []struct {
		name, method, path, key string
		want                    int
		header, headerValue     string
		grpcCode                codes.Code
	}{
		{"no key", "POST", "/v1/chat/completions", "", 401, "WWW-Authenticate", errcode.BearerChallenge, codes.Unauthenticated},
		{"bad key", "POST", "/v1/chat/completions", "bnk_nope", 401, "WWW-Authenticate", errcode.BearerChallenge, codes.Unauthenticated},
		{"wrong scope", "POST", "/v1/chat/completions", reader, 403, "", "", codes.PermissionDenied},
		{"allowed", "POST", "/v1/chat/completions", gen, 200, "", "", codes.OK},
		{"over the rate", "POST", "/v1/chat/completions", gen, 429, "Retry-After", "10", codes.ResourceExhausted},
		{"health open", "GET", "/healthz", "", 200, "", "", codes.OK},
		{"metrics need read", "GET", "/metrics", "", 401, "", "", codes.Unauthenticated},
		{"metrics with a generate key", "GET", "/metrics", gen, 403, "", "", codes.PermissionDenied},
		{"metrics with read", "GET", "/metrics", reader, 200, "", "", codes.OK},
	} {
		resp := do(tc.method, tc.path, tc.key)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: got HTTP %d, want %d", tc.name, resp.StatusCode, tc.want)
			continue
		}
		if tc.header != "" && resp.Header.Get(tc.header) != tc.headerValue {
			t.Errorf("%s: %s: got %q, want %q", tc.name, tc.header, resp.Header.Get(tc.header), tc.headerValue)
		}
		if tc.want >= 400 {
			var b body
			if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || codes.Code(b.Code) != tc.grpcCode || b.Message == "" {
				t.Errorf("%s: body %+v (%v), want code %d and a message", tc.name, b, err, tc.grpcCode)
			}
		}
	}
	if seen == nil || seen.Kind != KindKey || seen.Scopes.String() != "generate" {
		t.Errorf("principal in the handler: got %+v, want the generate key", seen)
	}
}

// TestHTTPClientCert: with mTLS required, the REST port refuses requests
// without a client certificate except health checks.
func TestHTTPClientCert(t *testing.T) {
	dev, _ := meshTLS(t)
	srvTLS, err := certs.Files{Cert: dev.ServerCert, Key: dev.ServerKey, ClientCA: dev.CA}.Server()
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGuard(WithClientCertRequired())
	if err != nil {
		t.Fatal(err)
	}
	lis, err := tls.Listen("tcp", "127.0.0.1:0", srvTLS)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(lis) }() // ends with Close
	defer hs.Close()
	url := "https://" + lis.Addr().String()
	for _, tc := range []struct {
		name  string
		files certs.Files
		path  string
		want  int
	}{
		{"no cert", certs.Files{CA: dev.CA}, "/v1/models", 401},
		{"no cert, health", certs.Files{CA: dev.CA}, "/healthz", 200},
		{"mesh cert", certs.Files{CA: dev.CA, Cert: dev.ClientCert, Key: dev.ClientKey}, "/v1/models", 200},
	} {
		cfg, err := tc.files.Client()
		if err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		resp, err := c.Get(url + tc.path)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: got HTTP %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
}
