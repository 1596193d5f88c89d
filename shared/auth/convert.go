package auth

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/auth/v1"
)

// LimitsToPB converts limits to the API message (nil when all zero).
func LimitsToPB(l Limits) *authv1.Limits {
	if l == (Limits{}) {
		return nil
	}
	return &authv1.Limits{
		RequestsPerSecond: l.RequestsPerSecond,
		Burst:             uint32(min(max(l.Burst, 0), math.MaxUint32)),
		TokensPerMinute:   uint64(max(l.TokensPerMinute, 0)),
		MaxStreams:        uint32(min(max(l.MaxStreams, 0), math.MaxUint32)),
	}
}

// LimitsFromPB converts the API message, checking it.
func LimitsFromPB(p *authv1.Limits) (Limits, error) {
	if p.GetTokensPerMinute() > math.MaxInt64 {
		return Limits{}, fmt.Errorf("tokens_per_minute %d is too large", p.GetTokensPerMinute())
	}
	l := Limits{
		RequestsPerSecond: p.GetRequestsPerSecond(),
		Burst:             int(p.GetBurst()),
		TokensPerMinute:   int64(p.GetTokensPerMinute()),
		MaxStreams:        int(p.GetMaxStreams()),
	}
	return l, l.Validate()
}

// KeyToPB converts a key for ListKeys and CreateKey (no hash).
func KeyToPB(k Key) *authv1.Key {
	out := &authv1.Key{Id: k.ID, Name: k.Name, Scopes: k.Scopes.Strings(), CreateTime: timestamppb.New(k.CreateTime), Limits: LimitsToPB(k.Limits)}
	if !k.ExpireTime.IsZero() {
		out.ExpireTime = timestamppb.New(k.ExpireTime)
	}
	return out
}

// VerifierToPB converts a key for SyncKeys (hash, no name).
func VerifierToPB(k Key) *authv1.KeyVerifier {
	out := &authv1.KeyVerifier{Id: k.ID, Sha256: k.Hash[:], Scopes: k.Scopes.Strings(), Limits: LimitsToPB(k.Limits)}
	if !k.ExpireTime.IsZero() {
		out.ExpireTime = timestamppb.New(k.ExpireTime)
	}
	return out
}

// KeyFromVerifier converts a SyncKeys entry back, checking it.
func KeyFromVerifier(v *authv1.KeyVerifier) (Key, error) {
	if !ValidKeyID(v.GetId()) || len(v.GetSha256()) != len(Key{}.Hash) {
		return Key{}, fmt.Errorf("key verifier %q: bad ID or sha256", v.GetId())
	}
	scopes, err := NewScopes(v.GetScopes()...)
	if err != nil {
		return Key{}, fmt.Errorf("key verifier %s: %w", v.GetId(), err)
	}
	lim, err := LimitsFromPB(v.GetLimits())
	if err != nil {
		return Key{}, fmt.Errorf("key verifier %s: %w", v.GetId(), err)
	}
	k := Key{ID: v.GetId(), Scopes: scopes, Limits: lim}
	copy(k.Hash[:], v.GetSha256())
	if v.GetExpireTime() != nil {
		k.ExpireTime = v.GetExpireTime().AsTime()
	}
	return k, nil
}
