package registry

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/auth/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/auth"
)

// KeyServer is bitnet.auth.v1.KeyService over a Store's API keys. Who may
// call what is the auth.Guard's business (admin; SyncKeys read).
type KeyServer struct {
	authv1.UnimplementedKeyServiceServer
	store    *Store
	onChange func()
}

// NewKeyServer returns the key service over store; onChange (may be nil)
// runs after every create and revoke, e.g. to refresh this process's key
// table at once.
func NewKeyServer(store *Store, onChange func()) *KeyServer {
	if onChange == nil {
		onChange = func() {}
	}
	return &KeyServer{store: store, onChange: onChange}
}

// Register registers the service on g.
func (s *KeyServer) Register(g grpc.ServiceRegistrar) { authv1.RegisterKeyServiceServer(g, s) }

// CreateKey implements KeyService.
func (s *KeyServer) CreateKey(ctx context.Context, req *authv1.CreateKeyRequest) (*authv1.CreateKeyResponse, error) {
	scopes, err := auth.NewScopes(req.GetScopes()...)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	lim, err := auth.LimitsFromPB(req.GetLimits())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := req.GetTtl().CheckValid(); req.GetTtl() != nil && err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "ttl: %v", err)
	}
	k, tok, err := s.store.CreateKey(ctx, KeySpec{Name: req.GetName(), Scopes: scopes, TTL: req.GetTtl().AsDuration(), Limits: lim})
	if err != nil {
		return nil, toStatus(err)
	}
	s.onChange()
	return &authv1.CreateKeyResponse{Key: auth.KeyToPB(k), Secret: tok.String()}, nil
}

// ListKeys implements KeyService.
func (s *KeyServer) ListKeys(ctx context.Context, _ *authv1.ListKeysRequest) (*authv1.ListKeysResponse, error) {
	keys, err := s.store.ListKeys(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &authv1.ListKeysResponse{Keys: make([]*authv1.Key, 0, len(keys))}
	for _, k := range keys {
		resp.Keys = append(resp.Keys, auth.KeyToPB(k))
	}
	return resp, nil
}

// RevokeKey implements KeyService.
func (s *KeyServer) RevokeKey(ctx context.Context, req *authv1.RevokeKeyRequest) (*authv1.RevokeKeyResponse, error) {
	k, err := s.store.RevokeKey(ctx, req.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	s.onChange()
	return &authv1.RevokeKeyResponse{Key: auth.KeyToPB(k)}, nil
}

// SyncKeys implements KeyService.
func (s *KeyServer) SyncKeys(ctx context.Context, req *authv1.SyncKeysRequest) (*authv1.SyncKeysResponse, error) {
	rev, keys, changed, err := s.store.SyncKeys(ctx, req.GetSinceRevision())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &authv1.SyncKeysResponse{Revision: rev, Unchanged: !changed}
	for _, k := range keys {
		resp.Keys = append(resp.Keys, auth.VerifierToPB(k))
	}
	return resp, nil
}
