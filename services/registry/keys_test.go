package registry

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	authv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/auth/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/auth"
)

func TestKeyStore(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	dir := t.TempDir()
	s := openStore(t, dir, WithClock(clock.Now))
	rev0, _, _, err := s.SyncKeys(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	k, tok, err := s.CreateKey(ctx, KeySpec{Name: "ci", Scopes: auth.Scopes{auth.ScopeRead, auth.ScopeGenerate}, TTL: time.Hour,
		Limits: auth.Limits{RequestsPerSecond: 5}})
	if err != nil {
		t.Fatal(err)
	}
	if k.ID != tok.ID || k.Hash != tok.Hash() || !k.ExpireTime.Equal(clock.Now().Add(time.Hour)) || k.Limits.RequestsPerSecond != 5 {
		t.Errorf("created key: got %+v", k)
	}
	for _, bad := range []KeySpec{
		{Name: "ci", Scopes: auth.Scopes{auth.ScopeRead}},
		{Name: "bad name", Scopes: auth.Scopes{auth.ScopeRead}},
		{Name: "noscope"},
		{Name: "neg", Scopes: auth.Scopes{auth.ScopeRead}, TTL: -time.Second},
		{Name: "lim", Scopes: auth.Scopes{auth.ScopeRead}, Limits: auth.Limits{MaxStreams: -1}},
	} {
		if _, _, err := s.CreateKey(ctx, bad); !errors.Is(err, ErrAlreadyExists) && !errors.Is(err, ErrInvalid) {
			t.Errorf("CreateKey(%+v): got %v, want ErrAlreadyExists or ErrInvalid", bad, err)
		}
	}
	// A given token (bootstrap) is stored as is.
	given, _ := auth.NewToken()
	if _, _, err := s.CreateKey(ctx, KeySpec{Name: "admin", Scopes: auth.Scopes{auth.ScopeAdmin}, Token: &given}); err != nil {
		t.Fatal(err)
	}
	rev, keys, changed, err := s.SyncKeys(ctx, rev0)
	if err != nil || !changed || rev != rev0+2 || len(keys) != 2 {
		t.Fatalf("SyncKeys after two creates: rev %d (want %d), changed %v, %d keys, %v", rev, rev0+2, changed, len(keys), err)
	}
	if _, keys, changed, _ := s.SyncKeys(ctx, rev); changed || keys != nil {
		t.Errorf("SyncKeys at the current revision: changed %v, %d keys; want unchanged", changed, len(keys))
	}
	// Durable: reopen.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, WithClock(clock.Now))
	list, err := s.ListKeys(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "admin" || list[1].Name != "ci" || list[1].Hash != tok.Hash() {
		t.Fatalf("ListKeys after reopening: got %+v, %v", list, err)
	}
	if _, err := s.RevokeKey(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeKey(ctx, "ci"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second revoke: got %v, want ErrNotFound", err)
	}
	if n, _ := s.KeyCount(ctx); n != 1 {
		t.Errorf("KeyCount after revoke: got %d, want 1", n)
	}
	// The name is free again.
	if _, _, err := s.CreateKey(ctx, KeySpec{Name: "ci", Scopes: auth.Scopes{auth.ScopeRead}}); err != nil {
		t.Errorf("re-create after revoke: %v", err)
	}
}

func TestKeyServer(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	changes := 0
	ks := NewKeyServer(s, func() { changes++ })
	resp, err := ks.CreateKey(ctx, &authv1.CreateKeyRequest{Name: "app", Scopes: []string{"generate", "READ"}, Ttl: durationpb.New(time.Hour),
		Limits: &authv1.Limits{TokensPerMinute: 600}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.ParseToken(resp.GetSecret())
	if err != nil || tok.ID != resp.GetKey().GetId() {
		t.Fatalf("secret %q: %v (key ID %s)", resp.GetSecret(), err, resp.GetKey().GetId())
	}
	if got := resp.GetKey().GetScopes(); len(got) != 2 || got[0] != "read" || got[1] != "generate" {
		t.Errorf("scopes: got %v, want [read generate]", got)
	}
	for _, bad := range []*authv1.CreateKeyRequest{
		{Name: "x", Scopes: []string{"root"}},
		{Name: "x"},
		{Name: "x", Scopes: []string{"read"}, Ttl: durationpb.New(-time.Hour)},
		{Name: "app", Scopes: []string{"read"}},
	} {
		_, err := ks.CreateKey(ctx, bad)
		if c := status.Code(err); c != codes.InvalidArgument && c != codes.AlreadyExists {
			t.Errorf("CreateKey(%v): got %v, want INVALID_ARGUMENT or ALREADY_EXISTS", bad, err)
		}
	}
	sync, err := ks.SyncKeys(ctx, &authv1.SyncKeysRequest{})
	if err != nil || len(sync.GetKeys()) != 1 {
		t.Fatalf("SyncKeys: %v, %v", sync, err)
	}
	k, err := auth.KeyFromVerifier(sync.GetKeys()[0])
	if err != nil || !k.Matches(tok) || k.Limits.TokensPerMinute != 600 || k.ExpireTime.IsZero() {
		t.Errorf("verifier: got %+v, %v; want one matching the secret", k, err)
	}
	if again, _ := ks.SyncKeys(ctx, &authv1.SyncKeysRequest{SinceRevision: sync.GetRevision()}); !again.GetUnchanged() {
		t.Error("SyncKeys at the current revision: not unchanged")
	}
	if _, err := ks.RevokeKey(ctx, &authv1.RevokeKeyRequest{Name: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("revoke unknown: got %v, want NOT_FOUND", err)
	}
	if _, err := ks.RevokeKey(ctx, &authv1.RevokeKeyRequest{Name: "app"}); err != nil {
		t.Fatal(err)
	}
	if list, _ := ks.ListKeys(ctx, &authv1.ListKeysRequest{}); len(list.GetKeys()) != 0 {
		t.Errorf("ListKeys after revoke: %v", list)
	}
	if changes != 2 {
		t.Errorf("onChange ran %d times, want 2 (create, revoke)", changes)
	}
}
