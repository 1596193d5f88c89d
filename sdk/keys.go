package sdk

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	authv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/auth/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/certs"
)

// EnvAPIKey is the environment variable the CLI (and FromEnv-style
// callers) read the API key from.
const EnvAPIKey = "BITNET_API_KEY"

// WithAPIKey sends key as "authorization: Bearer KEY" on every call. Keys
// are bearer secrets: use WithTLS for anything but loopback.
func WithAPIKey(key string) Option { return func(o *options) { o.apiKey = key } }

// bearerCreds are per-RPC credentials carrying an API key. They do not
// require TLS, so that `bitnet up --auth` on loopback works without
// certificates.
type bearerCreds struct{ key string }

func (b bearerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.key}, nil
}

func (bearerCreds) RequireTransportSecurity() bool { return false }

// KeysClient manages API keys (bitnet.auth.v1.KeyService, on the
// registry or `bitnet up`); its calls need an admin key.
type KeysClient struct {
	rpc authv1.KeyServiceClient
}

// Keys returns the key management client.
func (c *Client) Keys() *KeysClient { return c.keys }

// RPC returns the generated client.
func (k *KeysClient) RPC() authv1.KeyServiceClient { return k.rpc }

// KeySpec describes a key to create.
type KeySpec struct {
	Name   string
	Scopes []string      // read, generate, write, jobs, admin
	TTL    time.Duration // 0: no expiry
	Limits *authv1.Limits
}

// Create makes a key and returns it with its secret (bnk_...), which the
// mesh never shows again.
func (k *KeysClient) Create(ctx context.Context, spec KeySpec) (*authv1.Key, string, error) {
	req := &authv1.CreateKeyRequest{Name: spec.Name, Scopes: spec.Scopes, Limits: spec.Limits}
	if spec.TTL > 0 {
		req.Ttl = durationpb.New(spec.TTL)
	}
	resp, err := k.rpc.CreateKey(ctx, req)
	if err != nil {
		return nil, "", fmt.Errorf("create key %q: %w", spec.Name, err)
	}
	return resp.GetKey(), resp.GetSecret(), nil
}

// List returns every key (without secrets), by name.
func (k *KeysClient) List(ctx context.Context) ([]*authv1.Key, error) {
	resp, err := k.rpc.ListKeys(ctx, &authv1.ListKeysRequest{})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return resp.GetKeys(), nil
}

// Revoke revokes the key named name; it stops working across the mesh
// within seconds.
func (k *KeysClient) Revoke(ctx context.Context, name string) (*authv1.Key, error) {
	resp, err := k.rpc.RevokeKey(ctx, &authv1.RevokeKeyRequest{Name: name})
	if err != nil {
		return nil, fmt.Errorf("revoke key %q: %w", name, err)
	}
	return resp.GetKey(), nil
}

// TLSFiles returns the TLS configuration of a client from PEM files: the
// CA that verifies the server (empty: the system's roots) and, for servers
// that require client certificates (mTLS), a certificate and key (both or
// neither); serverName overrides the name the server's certificate is
// checked against. The certificate is re-read when its files change. Pass
// the result to WithTLS.
func TLSFiles(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("tls: a client certificate needs both its cert and key files")
	}
	cfg, err := certs.Files{CA: caFile, Cert: certFile, Key: keyFile, ServerName: serverName}.Client()
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		cfg = certs.ClientConfig(nil, nil, serverName)
	}
	return cfg, nil
}
