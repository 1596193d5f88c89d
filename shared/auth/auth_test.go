package auth

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	zapobs "go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"

	authv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/auth/v1"
	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
	trainerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/trainer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/errcode"
)

// servedMethods lists every RPC the mesh's servers register: the bitnet
// services, grpc.health.v1 and server reflection.
func servedMethods() []string {
	var out []string
	for _, f := range []protoreflect.FileDescriptor{
		authv1.File_bitnet_auth_v1_auth_proto,
		inferencev1.File_bitnet_inference_v1_inference_proto,
		quantizerv1.File_bitnet_quantizer_v1_quantizer_proto,
		registryv1.File_bitnet_registry_v1_registry_proto,
		trainerv1.File_bitnet_trainer_v1_trainer_proto,
		healthpb.File_grpc_health_v1_health_proto,
		grpc_reflection_v1.File_grpc_reflection_v1_reflection_proto,
	} {
		for i := range f.Services().Len() {
			s := f.Services().Get(i)
			for j := range s.Methods().Len() {
				out = append(out, "/"+string(s.FullName())+"/"+string(s.Methods().Get(j).Name()))
			}
		}
	}
	return out
}

// TestPolicyCoversEveryRPC: every RPC of every service is in the one
// table, and the table names no RPC that does not exist, so an RPC cannot
// be added without deciding its scope.
func TestPolicyCoversEveryRPC(t *testing.T) {
	pol := Policy()
	served := servedMethods()
	for _, m := range served {
		r, ok := pol[m]
		switch {
		case !ok:
			t.Errorf("%s is not in auth.Policy: add it with the scope it needs", m)
		case !r.Open && !slices.Contains(AllScopes(), r.Scope):
			t.Errorf("%s: scope %q is not a scope", m, r.Scope)
		case r.Open && !strings.HasPrefix(m, "/grpc.health.v1."):
			t.Errorf("%s is open; only health checks may be", m)
		}
	}
	for m := range pol {
		if !slices.Contains(served, m) && !strings.HasPrefix(m, "/grpc.reflection.v1alpha.") {
			t.Errorf("auth.Policy names %s, which no service has", m)
		}
	}
}

func TestTokens(t *testing.T) {
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	s := tok.String()
	if len(s) != TokenLen || !strings.HasPrefix(s, "bnk_"+tok.ID+"_") {
		t.Fatalf("token %q: want bnk_<id>_<secret>, %d characters", s, TokenLen)
	}
	back, err := ParseToken(s)
	if err != nil || back.ID != tok.ID || back.Hash() != tok.Hash() {
		t.Fatalf("ParseToken(String()): got %+v, %v", back, err)
	}
	other, _ := NewToken()
	if other.ID == tok.ID || other.Hash() == tok.Hash() {
		t.Error("two tokens share an ID or hash")
	}
	k := Key{ID: tok.ID, Hash: tok.Hash()}
	if !k.Matches(tok) || k.Matches(Token{ID: tok.ID, Secret: other.Secret}) {
		t.Error("Matches: want true for its secret only")
	}
	for _, bad := range []string{"", "bnk_", s[:len(s)-1], s + "A", strings.Replace(s, "bnk_", "bnx_", 1),
		"bnk_" + strings.ToUpper(tok.ID) + s[len("bnk_")+16:], strings.Replace(s, tok.ID+"_", tok.ID+"-", 1),
		s[:len(s)-1] + "!"} {
		if _, err := ParseToken(bad); !errors.Is(err, ErrMalformedToken) {
			t.Errorf("ParseToken(%q): got %v, want ErrMalformedToken", bad, err)
		}
	}
}

func TestScopes(t *testing.T) {
	s, err := ParseScopes("read, Generate,read")
	if err != nil || s.String() != "read,generate" {
		t.Fatalf("ParseScopes: got %v, %v; want read,generate", s, err)
	}
	if _, err := ParseScopes("read,root"); err == nil {
		t.Error(`ParseScopes("read,root"): got no error`)
	}
	if _, err := ParseScopes(" , "); err == nil {
		t.Error("ParseScopes of no scope: got no error")
	}
	admin := Scopes{ScopeAdmin}
	for _, sc := range AllScopes() {
		if !admin.Has(sc) {
			t.Errorf("admin does not imply %s", sc)
		}
	}
	if s.Has(ScopeWrite) || !s.Has(ScopeGenerate) {
		t.Errorf("%v.Has: wrong", s)
	}
}

// TestScopeBoundaries calls every RPC of the table with a key of each
// single scope: allowed exactly when the scope (or admin) is the one the
// RPC needs, PERMISSION_DENIED naming the needed scope otherwise.
func TestScopeBoundaries(t *testing.T) {
	src := newMemSource()
	keys := map[Scope]string{}
	for _, sc := range AllScopes() {
		keys[sc] = src.add(t, string(sc), Scopes{sc}, Limits{}, time.Time{})
	}
	g, err := NewGuard(WithKeys(newSyncedTable(t, src)))
	if err != nil {
		t.Fatal(err)
	}
	conn := dialConn(t, startGuarded(t, g, &anyService{}, nil), nil)
	ctx := context.Background()
	for method, rule := range Policy() {
		for _, sc := range AllScopes() {
			err := call(ctx, conn, method, keys[sc])
			wantOK := rule.Open || sc == rule.Scope || sc == ScopeAdmin
			switch {
			case wantOK && err != nil:
				t.Errorf("%s with a %s key: got %v, want OK", method, sc, err)
			case !wantOK && status.Code(err) != codes.PermissionDenied:
				t.Errorf("%s with a %s key: got %v, want PERMISSION_DENIED", method, sc, err)
			case !wantOK && !strings.Contains(status.Convert(err).Message(), `scope "`+string(rule.Scope)+`"`):
				t.Errorf("%s with a %s key: message %q does not name scope %q", method, sc, status.Convert(err).Message(), rule.Scope)
			}
		}
	}
	// A method outside the table is refused.
	if err := call(ctx, conn, "/bitnet.secret.v1.Backdoor/Open", keys[ScopeAdmin]); status.Code(err) != codes.PermissionDenied {
		t.Errorf("unknown method: got %v, want PERMISSION_DENIED", err)
	}
}

func TestUnauthenticated(t *testing.T) {
	clock := newClock()
	src := newMemSource()
	good := src.add(t, "good", Scopes{ScopeRead}, Limits{}, time.Time{})
	expired := src.add(t, "old", Scopes{ScopeRead}, Limits{}, clock.Now().Add(-time.Second))
	g, err := NewGuard(WithKeys(newSyncedTable(t, src, WithClock(clock.Now))))
	if err != nil {
		t.Fatal(err)
	}
	conn := dialConn(t, startGuarded(t, g, &anyService{}, nil), nil)
	ctx := context.Background()
	tok, _ := ParseToken(good)
	wrongSecret := Token{ID: tok.ID, Secret: make([]byte, 32)}.String()
	unknown, _ := NewToken()
	const m = inferencev1.InferenceService_ListModels_FullMethodName
	for name, key := range map[string]string{"none": "", "malformed": "hunter2", "unknown": unknown.String(),
		"wrong secret": wrongSecret, "expired": expired} {
		if err := call(ctx, conn, m, key); status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s key: got %v, want UNAUTHENTICATED", name, err)
		}
	}
	if err := call(ctx, conn, m, good); err != nil {
		t.Errorf("good key: %v", err)
	}
	if err := call(ctx, conn, healthpb.Health_Check_FullMethodName, ""); err != nil {
		t.Errorf("health without a key: %v, want open", err)
	}
}

// TestTableRevocationAndStaleness: a revoked key fails after the next
// sync; a key created elsewhere works at once (unknown IDs trigger a
// sync); known keys survive a registry outage for the max staleness, then
// every keyed call fails closed with UNAVAILABLE.
func TestTableRevocationAndStaleness(t *testing.T) {
	clock := newClock()
	src := newMemSource()
	key := src.add(t, "k", Scopes{ScopeRead}, Limits{}, time.Time{})
	tab := newSyncedTable(t, src, WithClock(clock.Now), WithMaxStale(time.Minute))
	ctx := context.Background()
	if _, err := tab.Lookup(ctx, key); err != nil {
		t.Fatal(err)
	}
	src.revoke(t, key)
	if _, err := tab.Lookup(ctx, key); err != nil {
		t.Fatalf("revoked, before the sync: got %v, want still valid", err)
	}
	if err := tab.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Lookup(ctx, key); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("revoked, after the sync: got %v, want UNAUTHENTICATED", err)
	}

	fresh := src.add(t, "fresh", Scopes{ScopeRead}, Limits{}, time.Time{})
	clock.Advance(2 * missRefreshEvery)
	if _, err := tab.Lookup(ctx, fresh); err != nil {
		t.Fatalf("key created after the last sync: got %v, want found by the miss refresh", err)
	}
	// Misses do not flood the source: one sync per missRefreshEvery.
	hits := src.hits
	unknown, _ := NewToken()
	for range 50 {
		_, _ = tab.Lookup(ctx, unknown.String())
	}
	if src.hits-hits > 1 {
		t.Errorf("50 unknown keys made %d syncs, want at most 1", src.hits-hits)
	}

	src.fail(errors.New("registry down"))
	clock.Advance(30 * time.Second)
	if err := tab.Sync(ctx); err == nil {
		t.Fatal("sync with a failing source: got no error")
	}
	if _, err := tab.Lookup(ctx, fresh); err != nil {
		t.Errorf("registry down 30 s (max stale 1 min): got %v, want the known key to work", err)
	}
	clock.Advance(31 * time.Second)
	if _, err := tab.Lookup(ctx, fresh); status.Code(err) != codes.Unavailable {
		t.Errorf("registry down 61 s: got %v, want UNAVAILABLE (fail closed)", err)
	}
	src.fail(nil)
	if err := tab.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Lookup(ctx, fresh); err != nil {
		t.Errorf("after the registry came back: %v", err)
	}
}

func TestRateLimits(t *testing.T) {
	src := newMemSource()
	rps := src.add(t, "rps", Scopes{ScopeGenerate, ScopeRead}, Limits{RequestsPerSecond: 0.5, Burst: 1}, time.Time{})
	quota := src.add(t, "quota", Scopes{ScopeGenerate}, Limits{TokensPerMinute: 60}, time.Time{})
	streams := src.add(t, "streams", Scopes{ScopeGenerate}, Limits{MaxStreams: 1}, time.Time{})
	g, err := NewGuard(WithKeys(newSyncedTable(t, src)))
	if err != nil {
		t.Fatal(err)
	}
	svc := &anyService{tokens: 100}
	conn := dialConn(t, startGuarded(t, g, svc, nil), nil)
	ctx := context.Background()
	const list, gen = inferencev1.InferenceService_ListModels_FullMethodName, inferencev1.InferenceService_Generate_FullMethodName

	if err := call(ctx, conn, list, rps); err != nil {
		t.Fatal(err)
	}
	err = call(ctx, conn, list, rps)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("second call at 0.5 req/s: got %v, want RESOURCE_EXHAUSTED", err)
	}
	if d, ok := errcode.RetryAfter(status.Convert(err)); !ok || d <= time.Second || d > 2*time.Second {
		t.Errorf("RetryInfo: got %v (%v), want (1 s, 2 s]", d, ok)
	}

	// 100 tokens against 60/min: the stream finishes (already generated),
	// the next generation waits until the debt is paid.
	if err := call(ctx, conn, gen, quota); err != nil {
		t.Fatal(err)
	}
	err = call(ctx, conn, gen, quota)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("generate over the token quota: got %v, want RESOURCE_EXHAUSTED", err)
	}
	if d, _ := errcode.RetryAfter(status.Convert(err)); d < 40*time.Second || d > 42*time.Second {
		t.Errorf("RetryInfo for a debt of 40 tokens at 1/s: got %v, want ~41 s", d)
	}

	// One stream at a time: once the first holds its slot, a second is
	// refused.
	svc.block = make(chan struct{})
	first := make(chan error, 1)
	go func() { first <- call(ctx, conn, gen, streams) }()
	stok, _ := ParseToken(streams)
	waitStreams(t, g, stok.ID, 1)
	if err := call(ctx, conn, gen, streams); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("second concurrent stream: got %v, want RESOURCE_EXHAUSTED", err)
	}
	close(svc.block)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// The slot is released when the handler returns, which may be just
	// after the client saw the stream's last message.
	waitStreams(t, g, stok.ID, 0)
	if err := call(ctx, conn, gen, streams); err != nil {
		t.Errorf("after the first stream ended: %v", err)
	}
}

func TestAudit(t *testing.T) {
	core, logs := zapobs.New(zapcore.InfoLevel)
	src := newMemSource()
	writer := src.add(t, "writer", Scopes{ScopeWrite}, Limits{}, time.Time{})
	reader := src.add(t, "reader", Scopes{ScopeRead}, Limits{}, time.Time{})
	g, err := NewGuard(WithKeys(newSyncedTable(t, src)), WithAuditLogger(zap.New(core).Named(AuditLoggerName)))
	if err != nil {
		t.Fatal(err)
	}
	conn := dialConn(t, startGuarded(t, g, &anyService{}, nil), nil)
	ctx := context.Background()
	wtok, _ := ParseToken(writer)
	rtok, _ := ParseToken(reader)
	const create, list = registryv1.RegistryService_CreateModel_FullMethodName, registryv1.RegistryService_ListModels_FullMethodName
	want := []struct{ principal, code string }{{wtok.ID, "OK"}, {rtok.ID, "PermissionDenied"}, {"-", "Unauthenticated"}}
	// A line is written when the handler returns, which may be just after
	// the client has its answer: wait for each before the next call.
	for _, c := range []struct {
		method, key string
		lines       int // audit lines after the call: a list adds none
	}{{create, writer, 1}, {list, reader, 1}, {create, reader, 2}, {create, "", 3}} {
		_ = call(ctx, conn, c.method, c.key)
		deadline := time.Now().Add(5 * time.Second)
		for logs.Len() < c.lines && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	got := logs.All()
	if len(got) != len(want) {
		t.Fatalf("got %d audit lines, want %d: %v", len(got), len(want), got)
	}
	for i, e := range got {
		f := e.ContextMap()
		if e.LoggerName != AuditLoggerName || e.Message != "audit" || f["principal"] != want[i].principal ||
			f["code"] != want[i].code || f["method"] != create {
			t.Errorf("audit line %d: got logger %q %q %v, want principal %s code %s", i, e.LoggerName, e.Message, f, want[i].principal, want[i].code)
		}
		for _, v := range f {
			if s, ok := v.(string); ok && (strings.Contains(s, writer[len(TokenPrefix)+17:]) || strings.Contains(s, reader[len(TokenPrefix)+17:])) {
				t.Errorf("audit line %d holds a key's secret: %v", i, f)
			}
		}
	}
}

func TestResource(t *testing.T) {
	for _, tc := range []struct {
		msgs []any
		want string
	}{
		{[]any{&registryv1.DeleteVersionRequest{Name: "tiny", Version: 3}}, "name=tiny version=3"},
		{[]any{&registryv1.UploadBlobRequest{Content: &registryv1.UploadBlobRequest_Header{Header: &registryv1.UploadBlobHeader{UploadId: "u1"}}}}, "header.upload_id=u1"},
		{[]any{&authv1.CreateKeyRequest{Name: "ci", Scopes: []string{"read"}}, &authv1.CreateKeyResponse{Key: &authv1.Key{Id: "0123456789abcdef", Name: "ci"}, Secret: "bnk_secret"}},
			"name=ci key.name=ci key.id=0123456789abcdef"},
		{[]any{nil}, ""},
	} {
		if got := resource(tc.msgs...); got != tc.want {
			t.Errorf("resource(%v): got %q, want %q", tc.msgs, got, tc.want)
		}
	}
}

// waitStreams waits until key id has n streams open at g.
func waitStreams(t *testing.T, g *Guard, id string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g.limits.mu.Lock()
		open := 0
		if k := g.limits.keys[id]; k != nil {
			open = k.streams
		}
		g.limits.mu.Unlock()
		if open == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("key %s: %d streams open after 10 s, want %d", id, open, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestTableSyncsOnFirstUse: a service that started before the registry (no
// successful sync yet) reads the table on the first keyed call.
func TestTableSyncsOnFirstUse(t *testing.T) {
	src := newMemSource()
	key := src.add(t, "k", Scopes{ScopeRead}, Limits{}, time.Time{})
	src.fail(errors.New("registry not up yet"))
	tab, err := NewTable(src)
	if err != nil {
		t.Fatal(err)
	}
	_ = tab.Sync(context.Background()) // the start-up sync fails
	src.fail(nil)
	if _, err := tab.Lookup(context.Background(), key); err != nil {
		t.Fatalf("first call once the registry is up: %v, want the table synced on demand", err)
	}
}
