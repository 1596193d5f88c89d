package server

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/bitnet-mesh/bitnet-mesh/shared/auth"
	"github.com/bitnet-mesh/bitnet-mesh/shared/certs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/errcode"
)

// TestMTLSGateway serves gRPC and REST under mTLS with the auth Guard
// requiring client certificates: gRPC callers need a mesh certificate
// (health excepted, another CA's fails the handshake); REST callers too,
// and the gateway still reaches its own gRPC server (in process, without a
// certificate of its own).
func TestMTLSGateway(t *testing.T) {
	dir := t.TempDir()
	dev, err := certs.WriteDev(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	srvTLS, err := certs.Files{Cert: dev.ServerCert, Key: dev.ServerKey, ClientCA: dev.CA}.Server()
	if err != nil {
		t.Fatal(err)
	}
	g, err := auth.NewGuard(auth.WithClientCertRequired(),
		auth.WithPolicy(map[string]auth.Rule{
			"/grpc.testing.TestService/UnaryCall":           {Scope: auth.ScopeRead},
			"/grpc.testing.TestService/StreamingOutputCall": {Scope: auth.ScopeRead},
			healthpb.Health_Check_FullMethodName:            {Open: true},
		}))
	if err != nil {
		t.Fatal(err)
	}
	r := startServer(t, WithTLS(srvTLS), WithGateway(echoGateway), WithMetricsAddr("127.0.0.1:0"),
		WithUnaryInterceptor(g.UnaryServerInterceptor()), WithStreamInterceptor(g.StreamServerInterceptor()),
		WithHTTPMiddleware(g.Middleware))

	foreign, err := certs.NewCA("foreign", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	intruder, err := foreign.Issue("intruder", nil, certs.ClientOnly, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ifiles := certs.Files{CA: dev.CA, Cert: filepath.Join(dir, "i.crt"), Key: filepath.Join(dir, "i.key")}
	if err := intruder.Write(ifiles.Cert, ifiles.Key); err != nil {
		t.Fatal(err)
	}
	clients := map[string]certs.Files{
		"mesh cert": {CA: dev.CA, Cert: dev.ClientCert, Key: dev.ClientKey},
		"no cert":   {CA: dev.CA},
		"foreign":   ifiles,
	}
	tlsFor := func(name string) *tls.Config {
		cfg, err := clients[name].Client()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	ctx := context.Background()
	for _, tc := range []struct {
		client       string
		unary, check codes.Code
	}{
		{"mesh cert", codes.OK, codes.OK},
		{"no cert", codes.Unauthenticated, codes.OK},
		{"foreign", codes.Unavailable, codes.Unavailable},
	} {
		conn, err := grpc.NewClient(r.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(tlsFor(tc.client))))
		if err != nil {
			t.Fatal(err)
		}
		_, err = testpb.NewTestServiceClient(conn).UnaryCall(ctx, &testpb.SimpleRequest{})
		if status.Code(err) != tc.unary {
			t.Errorf("gRPC %s: got %v, want %v", tc.client, err, tc.unary)
		}
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if status.Code(err) != tc.check {
			t.Errorf("health check, %s: got %v, want %v", tc.client, err, tc.check)
		}
		conn.Close()
	}

	base := "https://" + r.HTTPAddr().String()
	for _, tc := range []struct {
		client, method, path string
		want                 int
	}{
		{"mesh cert", "POST", "/v1/echo", 200},
		{"mesh cert", "POST", "/v1/stream", 200},
		{"no cert", "POST", "/v1/echo", 401},
		{"no cert", "GET", "/healthz", 200},
		{"no cert", "GET", "/readyz", 200},
		{"mesh cert", "GET", "/metrics", 404}, // on its own listener
	} {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsFor(tc.client), ForceAttemptHTTP2: true}}
		req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader(`{"payload":{"body":"YQ=="}}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Errorf("REST %s %s %s: %v", tc.client, tc.method, tc.path, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("REST %s %s %s: got %d %s, want %d", tc.client, tc.method, tc.path, resp.StatusCode, body, tc.want)
		}
		if resp.ProtoMajor != 2 {
			t.Errorf("REST over TLS: got HTTP/%d, want HTTP/2", resp.ProtoMajor)
		}
	}
	resp, err := http.Get("http://" + r.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), MetricGRPCHandled) {
		t.Errorf("metrics listener: got %d, want 200 with %s", resp.StatusCode, MetricGRPCHandled)
	}
}

// TestGatewayErrorHeaders: a REST 401 carries a bearer challenge, a 429
// the RetryInfo's delay as Retry-After (rounded up), a 429 without one 1 s.
func TestGatewayErrorHeaders(t *testing.T) {
	fail := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		switch string(req.(*testpb.SimpleRequest).GetPayload().GetBody()) {
		case "401":
			return nil, status.Error(codes.Unauthenticated, "missing API key")
		case "429":
			return nil, errcode.WithRetry(codes.ResourceExhausted, 2500*time.Millisecond, "slow down")
		case "429-plain":
			return nil, status.Error(codes.ResourceExhausted, "queue full")
		}
		return h(ctx, req)
	}
	r := startServer(t, WithGateway(echoGateway), WithUnaryInterceptor(fail))
	base := "http://" + r.HTTPAddr().String()
	for _, tc := range []struct {
		body, header, want string
		code               int
	}{
		{"NDAx", "WWW-Authenticate", errcode.BearerChallenge, 401}, // "401"
		{"NDI5", "Retry-After", "3", 429},                          // "429"
		{"NDI5LXBsYWlu", "Retry-After", "1", 429},                  // "429-plain"
	} {
		resp, body := post(t, base+"/v1/echo", `{"payload":{"body":"`+tc.body+`"}}`, nil)
		if resp.StatusCode != tc.code || resp.Header.Get(tc.header) != tc.want {
			t.Errorf("body %s: got %d, %s %q (%s); want %d, %q", tc.body, resp.StatusCode, tc.header, resp.Header.Get(tc.header), body, tc.code, tc.want)
		}
	}
}

// TestTLSReload: replacing the certificate files changes what the next
// handshake serves, without a restart.
func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	ca, err := certs.NewCA("ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cf, kf := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	issue := func(cn string) {
		l, err := ca.Issue(cn, []string{"127.0.0.1"}, certs.ServerAndClient, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Write(cf, kf); err != nil {
			t.Fatal(err)
		}
	}
	issue("one")
	rl, err := certs.NewReloader(cf, kf, certs.WithCheckInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	r := startServer(t, WithTLS(certs.ServerConfig(rl, nil)))
	served := func(addr string) string {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), NextProtos: []string{"h2"}})
		if err != nil {
			return err.Error()
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	for _, addr := range []string{r.Addr().String(), r.HTTPAddr().String()} {
		if got := served(addr); got != "one" {
			t.Fatalf("%s: got %q, want one", addr, got)
		}
	}
	issue("two")
	deadline := time.Now().Add(5 * time.Second)
	for _, addr := range []string{r.Addr().String(), r.HTTPAddr().String()} {
		for served(addr) != "two" {
			if time.Now().After(deadline) {
				t.Fatalf("%s: still %q 5 s after rotation, want two", addr, served(addr))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
