package mesh

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	zapobs "go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	authv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/auth/v1"
	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
	trainerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/trainer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
	"github.com/bitnet-mesh/bitnet-mesh/shared/auth"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
	"github.com/bitnet-mesh/bitnet-mesh/tools/hostile"
)

// servedBy lists the methods of the services a public `up` server serves,
// plus health and reflection.
func servedBy() []protoreflect.MethodDescriptor {
	var out []protoreflect.MethodDescriptor
	for _, f := range []protoreflect.FileDescriptor{
		authv1.File_bitnet_auth_v1_auth_proto, inferencev1.File_bitnet_inference_v1_inference_proto,
		quantizerv1.File_bitnet_quantizer_v1_quantizer_proto, registryv1.File_bitnet_registry_v1_registry_proto,
		trainerv1.File_bitnet_trainer_v1_trainer_proto, healthpb.File_grpc_health_v1_health_proto,
		grpc_reflection_v1.File_grpc_reflection_v1_reflection_proto,
	} {
		for i := range f.Services().Len() {
			ms := f.Services().Get(i).Methods()
			for j := range ms.Len() {
				out = append(out, ms.Get(j))
			}
		}
	}
	return out
}

func fullName(m protoreflect.MethodDescriptor) string {
	return "/" + string(m.Parent().FullName()) + "/" + string(m.Name())
}

// invoke calls m with an empty request (one message on a stream) and key,
// and returns the status of the first answer; the real handlers answer
// INVALID_ARGUMENT, NOT_FOUND, OK..., never UNAUTHENTICATED or
// PERMISSION_DENIED themselves.
func invoke(ctx context.Context, conn *grpc.ClientConn, m protoreflect.MethodDescriptor, key string) error {
	in, err := protoregistry.GlobalTypes.FindMessageByName(m.Input().FullName())
	if err != nil {
		return err
	}
	out, err := protoregistry.GlobalTypes.FindMessageByName(m.Output().FullName())
	if err != nil {
		return err
	}
	if key != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, fullName(m))
	if err != nil {
		return err
	}
	if err := st.SendMsg(in.New().Interface()); err == nil {
		_ = st.CloseSend()
	}
	return st.RecvMsg(out.New().Interface())
}

func readAdminKey(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(b))
	if _, err := auth.ParseToken(key); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return key
}

func dialKey(t testing.TB, addr, key string, opts ...sdk.Option) *sdk.Client {
	t.Helper()
	c, err := sdk.Dial(context.Background(), addr, append([]sdk.Option{sdk.WithRetry(1, 0), sdk.WithAPIKey(key)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestUpAuth runs `up --auth` on loopback: the first start writes
// DATA/admin.key (0600, never logged); every RPC needs its scope (one case
// per RPC and scope, on the real services); REST answers 401/403/429 with
// their headers; mutating calls are audited; a restart keeps the keys.
func TestUpAuth(t *testing.T) {
	core, logs := zapobs.New(zapcore.DebugLevel)
	dir := t.TempDir()
	cfg := Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DataDir: dir, Threads: 1, Auth: true, Logger: zap.New(core)}
	ctx := context.Background()
	var admin string
	keys := map[auth.Scope]string{}
	t.Run("first start", func(t *testing.T) {
		e := startUp(t, cfg)
		if want := filepath.Join(dir, "admin.key"); e.AdminKeyFile != want {
			t.Fatalf("admin key file: got %q, want %q", e.AdminKeyFile, want)
		}
		admin = readAdminKey(t, e.AdminKeyFile)
		conn := dialGRPC(t, e.GRPC.String())
		ac := dialKey(t, e.GRPC.String(), admin)
		for _, sc := range auth.AllScopes() {
			_, secret, err := ac.Keys().Create(ctx, sdk.KeySpec{Name: "only-" + string(sc), Scopes: []string{string(sc)}})
			if err != nil {
				t.Fatal(err)
			}
			keys[sc] = secret
		}

		t.Run("scope boundaries", func(t *testing.T) {
			pol := auth.Policy()
			for _, m := range servedBy() {
				rule := pol[fullName(m)]
				if rule.Open {
					if err := invoke(ctx, conn, m, ""); status.Code(err) == codes.Unauthenticated {
						t.Errorf("%s without a key: got %v, want open", fullName(m), err)
					}
					continue
				}
				if err := invoke(ctx, conn, m, ""); status.Code(err) != codes.Unauthenticated {
					t.Errorf("%s without a key: got %v, want UNAUTHENTICATED", fullName(m), err)
				}
				for _, sc := range auth.AllScopes() {
					err := invoke(ctx, conn, m, keys[sc])
					code := status.Code(err)
					if sc == rule.Scope || sc == auth.ScopeAdmin {
						if code == codes.PermissionDenied || code == codes.Unauthenticated {
							t.Errorf("%s with a %s key: got %v, want past auth", fullName(m), sc, err)
						}
					} else if code != codes.PermissionDenied || !strings.Contains(err.Error(), `"`+string(rule.Scope)+`"`) {
						t.Errorf("%s with a %s key: got %v, want PERMISSION_DENIED naming %q", fullName(m), sc, err, rule.Scope)
					}
				}
			}
		})

		t.Run("push and generate", func(t *testing.T) {
			if _, err := dialKey(t, e.GRPC.String(), keys[auth.ScopeWrite]).Registry().Push(ctx, "tiny", "../../testdata/models/tiny-gqa-tied-f32", nil); err != nil {
				t.Fatal(err)
			}
			// The router forwards the caller's key to the node, which checks it.
			final, err := dialKey(t, e.GRPC.String(), keys[auth.ScopeGenerate]).Inference().GenerateText(ctx,
				&inferencev1.GenerateRequest{Model: "tiny@1", Prompt: "Light", MaxTokens: 2}, nil)
			if err != nil || final.GetNode() != "local" {
				t.Fatalf("generate with a generate key: node %q, %v", final.GetNode(), err)
			}
			_, err = dialKey(t, e.GRPC.String(), keys[auth.ScopeRead]).Inference().GenerateText(ctx,
				&inferencev1.GenerateRequest{Model: "tiny@1", Prompt: "Light", MaxTokens: 2}, nil)
			if status.Code(err) != codes.PermissionDenied {
				t.Errorf("generate with a read key: got %v, want PERMISSION_DENIED", err)
			}
		})

		t.Run("REST", func(t *testing.T) {
			_, limited, err := ac.Keys().Create(ctx, sdk.KeySpec{Name: "limited", Scopes: []string{"read"},
				Limits: &authv1.Limits{RequestsPerSecond: 0.1, Burst: 1}})
			if err != nil {
				t.Fatal(err)
			}
			base := "http://" + e.HTTP.String()
			for _, tc := range []struct {
				name, method, path, key string
				want                    int
				header, value           string
			}{
				{"no key", "GET", "/v1/registry/models", "", 401, "WWW-Authenticate", `Bearer realm="bitnet"`},
				{"bad key", "GET", "/v1/models", "bnk_0000", 401, "WWW-Authenticate", `Bearer realm="bitnet"`},
				{"read key", "GET", "/v1/registry/models", keys[auth.ScopeRead], 200, "", ""},
				{"read key, delete", "DELETE", "/v1/registry/models/tiny", keys[auth.ScopeRead], 403, "", ""},
				{"generate key, keys", "GET", "/v1/keys", keys[auth.ScopeGenerate], 403, "", ""},
				{"admin, keys", "GET", "/v1/keys", admin, 200, "", ""},
				{"health open", "GET", "/healthz", "", 200, "", ""},
				{"readiness open", "GET", "/readyz", "", 200, "", ""},
				{"metrics need read", "GET", "/metrics", "", 401, "", ""},
				{"metrics with read", "GET", "/metrics", keys[auth.ScopeRead], 200, "", ""},
				{"limited, first", "GET", "/v1/models", limited, 200, "", ""},
				{"limited, over", "GET", "/v1/models", limited, 429, "Retry-After", "10"},
			} {
				req, err := http.NewRequest(tc.method, base+tc.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tc.key != "" {
					req.Header.Set("Authorization", "Bearer "+tc.key)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Errorf("%s: %s %s: got %d %s, want %d", tc.name, tc.method, tc.path, resp.StatusCode, body, tc.want)
				}
				if tc.header != "" {
					got := resp.Header.Get(tc.header)
					if n, err := strconv.Atoi(got); tc.header == "Retry-After" && (err != nil || n < 9 || n > 10) || tc.header != "Retry-After" && got != tc.value {
						t.Errorf("%s: %s: got %q, want %q", tc.name, tc.header, got, tc.value)
					}
				}
			}
		})
	})

	t.Run("audit and secrecy", func(t *testing.T) {
		wid, _ := auth.ParseToken(keys[auth.ScopeWrite])
		found, upload := false, false
		for _, e := range logs.FilterLoggerName(auth.AuditLoggerName).All() {
			f := e.ContextMap()
			if f["method"] == registryv1.RegistryService_CreateVersion_FullMethodName && f["principal"] == wid.ID && f["code"] == "OK" &&
				f["resource"] == "name=tiny" {
				found = true
			}
			// A client stream's line names what its first message named.
			if f["method"] == registryv1.RegistryService_UploadBlob_FullMethodName && f["principal"] == wid.ID && f["code"] == "OK" &&
				strings.HasPrefix(fmt.Sprint(f["resource"]), "header.upload_id=") {
				upload = true
			}
			if f["principal"] == "" || f["method"] == "" || f["code"] == "" {
				t.Errorf("audit line without principal, method or code: %v", f)
			}
		}
		if !found || !upload {
			t.Errorf("audit lines for the push by the write key: CreateVersion %v, UploadBlob %v; want both", found, upload)
		}
		all := append([]string{admin}, keys[auth.ScopeAdmin], keys[auth.ScopeWrite])
		for _, e := range logs.All() {
			line := e.Message + fmt.Sprint(e.ContextMap())
			for _, k := range all {
				if strings.Contains(line, k[len(auth.TokenPrefix)+17:]) {
					t.Fatalf("a key's secret is in the log: %s", line)
				}
			}
		}
	})

	t.Run("restart keeps the keys", func(t *testing.T) {
		e := startUp(t, cfg)
		if e.AdminKeyFile != "" {
			t.Errorf("second start: admin key file %q, want none created", e.AdminKeyFile)
		}
		if got := readAdminKey(t, filepath.Join(dir, "admin.key")); got != admin {
			t.Error("second start rewrote admin.key")
		}
		if _, err := dialKey(t, e.GRPC.String(), keys[auth.ScopeRead]).Registry().List(ctx, ""); err != nil {
			t.Errorf("read key after restart: %v", err)
		}
	})
}

// TestInsecureRefusal: a service on a non-loopback address without keys or
// mTLS is refused unless Insecure says so.
func TestInsecureRefusal(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    func(Config) Config
		wantOK bool
	}{
		{"no auth", func(c Config) Config { return c }, false},
		{"--insecure", func(c Config) Config { c.Insecure = true; return c }, true},
		{"--auth", func(c Config) Config { c.Auth = true; return c }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMemDiscovery(t)
			cfg := tc.cfg(Config{GRPCAddr: "0.0.0.0:0", HTTPAddr: "-", DataDir: t.TempDir(), Discovery: mem})
			s, err := Build(Registry, cfg)
			if gotOK := err == nil; gotOK != tc.wantOK {
				t.Fatalf("Build on 0.0.0.0: got error %v, want ok=%v", err, tc.wantOK)
			}
			if err != nil && !strings.Contains(err.Error(), "--insecure") {
				t.Errorf("refusal %q does not name --insecure", err)
			}
			if s != nil {
				_ = s.Close()
			}
		})
	}
	// A loopback-only REST port does not make a public gRPC port acceptable.
	mem := newMemDiscovery(t)
	if _, err := Build(Registry, Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "0.0.0.0:0", DataDir: t.TempDir(), Discovery: mem}); err == nil {
		t.Error("REST on 0.0.0.0 without auth: got no error")
	}
}

func newMemDiscovery(t *testing.T) *discovery.Memory {
	t.Helper()
	m := discovery.NewMemory()
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// TestProtect: an HTTP route outside the gateway guarded by the Service's
// Guard (what the OpenAI-compatible routes use).
func TestProtect(t *testing.T) {
	dir := t.TempDir()
	s, err := Build(Registry, Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "-", DataDir: dir, Discovery: newMemDiscovery(t), Auth: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Keys().Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	admin := readAdminKey(t, filepath.Join(dir, "admin.key"))
	h := s.protect(auth.Route{Scope: auth.ScopeGenerate, Stream: true}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := auth.FromContext(r.Context()); !ok || p.Kind != auth.KindKey {
			t.Errorf("principal: got %+v, want the admin key", p)
		}
	}))
	for key, want := range map[string]int{"": 401, admin: 200} {
		req := httptest.NewRequest("POST", "/v1/chat/completions", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("key sent %v: got %d, want %d", key != "", rec.Code, want)
		}
	}
}

// TestBootstrapAfterKeylessUse: keys made while auth was off do not stop
// the first --auth start from creating an admin key.
func TestBootstrapAfterKeylessUse(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	e := startUpOnce(t, Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "-", DataDir: dir, Threads: 1}, func(e Endpoints) {
		if _, _, err := dialSDK(t, e.GRPC.String()).Keys().Create(ctx, sdk.KeySpec{Name: "early", Scopes: []string{"read"}}); err != nil {
			t.Fatal(err)
		}
	})
	if e.AdminKeyFile != "" {
		t.Fatalf("auth off: admin key file %q, want none", e.AdminKeyFile)
	}
	e = startUpOnce(t, Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DataDir: dir, Threads: 1, Auth: true,
		MetricsAddr: "127.0.0.1:0"}, func(e Endpoints) {
		admin := readAdminKey(t, filepath.Join(dir, "admin.key"))
		keys, err := dialKey(t, e.GRPC.String(), admin).Keys().List(ctx)
		if err != nil || len(keys) != 2 {
			t.Errorf("keys after the first --auth start: %v, %v; want early and admin", keys, err)
		}
		// /metrics is on its own listener, not the REST port.
		resp, err := http.Get("http://" + e.HTTP.String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("/metrics on the REST port with --metrics-addr: got 200")
		}
	})
	if e.AdminKeyFile == "" {
		t.Error("first --auth start after keyless use: no admin key created")
	}
}

// startUpOnce runs Up with cfg, calls check once it is ready, and stops it.
func startUpOnce(t *testing.T, cfg Config, check func(Endpoints)) Endpoints {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan Endpoints, 1)
	done := make(chan error, 1)
	go func() { done <- Up(ctx, cfg, func(e Endpoints) { ready <- e }) }()
	var e Endpoints
	select {
	case e = <-ready:
	case err := <-done:
		t.Fatalf("Up ended early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready within 30 s")
	}
	check(e)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Up: %v", err)
	}
	return e
}

// TestHostileUnauthorized is the unauthorized part of the hostile-client
// suite (package hostile, UnauthorizedCases) against `up --auth`: calls
// without keys, with malformed, forged, revoked and wrongly scoped keys,
// the corpus pushed without a key, a forged-key flood and a key over its
// rate; every one refused within the suite's deadline, memory within its
// bound, and the mesh serving its key holders afterwards.
func TestHostileUnauthorized(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a mesh")
	}
	dir := t.TempDir()
	e := startUp(t, Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DataDir: dir, Threads: 1, Auth: true,
		Limits: hostileLimits(), JobMemoryBudget: 1 << 30})
	ctx := context.Background()
	admin := dialKey(t, e.GRPC.String(), readAdminKey(t, filepath.Join(dir, "admin.key")))
	if _, err := admin.Registry().Push(ctx, "tiny", "../../testdata/models/tiny-gqa-tied-f32", nil); err != nil {
		t.Fatal(err)
	}
	create := func(name string, scopes []string, lim *authv1.Limits) string {
		_, k, err := admin.Keys().Create(ctx, sdk.KeySpec{Name: name, Scopes: scopes, Limits: lim})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	keys := hostile.Keys{
		Read:    create("reader", []string{"read"}, nil),
		Revoked: create("gone", []string{"admin"}, nil),
		Limited: create("slow", []string{"read"}, &authv1.Limits{RequestsPerSecond: 1.0 / 60, Burst: 1}),
	}
	if _, err := admin.Keys().Revoke(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	corpus, err := hostile.Corpus("../../testdata/models/tiny-gqa-tied-f32")
	if err != nil {
		t.Fatal(err)
	}
	target := &hostile.Target{REST: "http://" + e.HTTP.String(), GRPC: e.GRPC.String(), Model: "tiny@1"}
	runtime.GC()
	base := rssBytes()
	rss := sampleRSS(10 * time.Millisecond)
	cases := hostile.UnauthorizedCases(corpus, keys)
	for _, r := range hostile.Run(ctx, target, cases, caseDeadline, t.Logf) {
		if r.Err != nil {
			t.Errorf("%s: %v", r.Case.Name, r.Err)
		}
	}
	peak := rss.done()
	t.Logf("%d cases; resident memory: %d MiB before, peak %d MiB (bound +%d MiB)", len(cases), base>>20, peak>>20, rssBound>>20)
	if base > 0 && peak-base > rssBound {
		t.Errorf("resident memory grew by %d MiB, want at most %d MiB", (peak-base)>>20, rssBound>>20)
	}
	gen := dialKey(t, e.GRPC.String(), create("app", []string{"generate"}, nil))
	final, err := gen.Inference().GenerateText(ctx, &inferencev1.GenerateRequest{Model: "tiny@1", Prompt: "Light", MaxTokens: 2}, nil)
	if err != nil || final.GetUsage().GetCompletionTokens() != 2 {
		t.Fatalf("generate with a key after the unauthorized cases: %v, %v", final, err)
	}
}
