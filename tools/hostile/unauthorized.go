package hostile

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/auth/v1"
	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
)

// Keys are the API keys the unauthorized cases use against a mesh with
// --auth: a key with scope read only, a revoked key and a key limited to
// one request per minute. Target.Header must stay empty for them.
type Keys struct {
	Read, Revoked, Limited string
}

// forged returns a key of the right form that no registry issued.
func forged() string {
	var id [8]byte
	var secret [32]byte
	_, _ = rand.Read(id[:])
	_, _ = rand.Read(secret[:])
	return "bnk_" + hex.EncodeToString(id[:]) + "_" + base64.RawURLEncoding.EncodeToString(secret[:])
}

// bearer is the header map of a key.
func bearer(key string) map[string]string { return map[string]string{"Authorization": "Bearer " + key} }

// UnauthorizedCases returns the cases of a mesh with API keys (kind
// "unauthorized"): calls without a key, with malformed, forged, revoked
// and wrongly scoped keys, over REST and gRPC; every corpus model pushed
// without a key; a flood of forged keys; a key over its rate limit. Each
// must be refused (401/UNAUTHENTICATED, 403/PERMISSION_DENIED or 429 with
// Retry-After) before any work is done.
func UnauthorizedCases(corpus []Model, keys Keys) []Case {
	var cs []Case
	for _, m := range corpus {
		cs = append(cs, Case{Name: "unauthenticated push " + m.Name, Kind: "unauthorized", Run: func(ctx context.Context, t *Target) (string, error) {
			st, b, err := t.do(ctx, "POST", "/v1/registry/uploads", "application/json",
				strings.NewReader(fmt.Sprintf(`{"sha256": %q, "size_bytes": %d}`, sha(m.Files[firstFile(m)]), len(m.Files[firstFile(m)]))), nil)
			return want(st, b, err, http.StatusUnauthorized)
		}})
	}
	cs = append(cs,
		restCase("REST without a key", "unauthorized", "GET", "/v1/registry/models", "", "", nil, http.StatusUnauthorized),
		restCase("REST generate without a key", "unauthorized", "POST", "/v1/generate", "application/json",
			`{"model": "tiny@1", "prompt": "x"}`, nil, http.StatusUnauthorized),
		restCase("REST malformed key", "unauthorized", "GET", "/v1/models", "", "", bearer("hunter2"), http.StatusUnauthorized),
		restCase("REST Basic credentials", "unauthorized", "GET", "/v1/models", "", "",
			map[string]string{"Authorization": "Basic YWRtaW46YWRtaW4="}, http.StatusUnauthorized),
		restCase("REST forged key", "unauthorized", "GET", "/v1/models", "", "", bearer(forged()), http.StatusUnauthorized),
		restCase("REST revoked key", "unauthorized", "GET", "/v1/models", "", "", bearer(keys.Revoked), http.StatusUnauthorized),
		restCase("REST read key deletes", "unauthorized", "DELETE", "/v1/registry/models/tiny", "", "", bearer(keys.Read), http.StatusForbidden),
		restCase("REST read key creates a key", "unauthorized", "POST", "/v1/keys", "application/json",
			`{"name": "mine", "scopes": ["admin"]}`, bearer(keys.Read), http.StatusForbidden),
		restCase("REST read key starts a training job", "unauthorized", "POST", "/v1/trainer/jobs", "application/json",
			`{}`, bearer(keys.Read), http.StatusForbidden),
		restCase("REST metrics with a forged key", "unauthorized", "GET", "/metrics", "", "", bearer(forged()), http.StatusUnauthorized),
		Case{Name: "REST over the key's rate", Kind: "unauthorized", Run: func(ctx context.Context, t *Target) (string, error) {
			var last string
			for range 3 { // the first may pass (burst 1); the next must not
				req, err := http.NewRequestWithContext(ctx, "GET", t.REST+"/v1/models", nil)
				if err != nil {
					return "error", err
				}
				req.Header.Set("Authorization", "Bearer "+keys.Limited)
				resp, err := t.http().Do(req)
				if err != nil {
					return "error", err
				}
				resp.Body.Close()
				last = fmt.Sprint(resp.StatusCode)
				if resp.StatusCode == http.StatusTooManyRequests {
					if resp.Header.Get("Retry-After") == "" {
						return last, fmt.Errorf("429 without Retry-After")
					}
					return last, nil
				}
			}
			return last, fmt.Errorf("three requests at once on a 1/min key: got %s, want 429", last)
		}},
		grpcCase("gRPC without a key", "", codes.Unauthenticated, func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := registryv1.NewRegistryServiceClient(c).ListModels(ctx, &registryv1.ListModelsRequest{})
			return err
		}),
		grpcCase("gRPC generate stream without a key", "", codes.Unauthenticated, func(ctx context.Context, c *grpc.ClientConn) error {
			s, err := inferencev1.NewInferenceServiceClient(c).Generate(ctx, &inferencev1.GenerateRequest{Model: "tiny@1", Prompt: "x"})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}),
		grpcCase("gRPC forged key", forged(), codes.Unauthenticated, func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := inferencev1.NewInferenceServiceClient(c).ListNodes(ctx, &inferencev1.ListNodesRequest{})
			return err
		}),
		grpcCase("gRPC revoked key", keys.Revoked, codes.Unauthenticated, func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := registryv1.NewRegistryServiceClient(c).ListModels(ctx, &registryv1.ListModelsRequest{})
			return err
		}),
		grpcCase("gRPC read key revokes a key", keys.Read, codes.PermissionDenied, func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := authv1.NewKeyServiceClient(c).RevokeKey(ctx, &authv1.RevokeKeyRequest{Name: "admin"})
			return err
		}),
		grpcCase("gRPC read key unloads a model", keys.Read, codes.PermissionDenied, func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := inferencev1.NewInferenceServiceClient(c).UnloadModel(ctx, &inferencev1.UnloadModelRequest{Model: "tiny@1"})
			return err
		}),
		Case{Name: "forged-key flood", Kind: "unauthorized", Run: func(ctx context.Context, t *Target) (string, error) {
			return t.forgedFlood(ctx, 256)
		}},
	)
	return cs
}

func firstFile(m Model) string {
	for p := range m.Files {
		return p
	}
	return ""
}

// grpcCase calls the mesh over gRPC with key ("" for none) and wants code.
func grpcCase(name, key string, code codes.Code, call func(context.Context, *grpc.ClientConn) error) Case {
	return Case{Name: name, Kind: "unauthorized", Run: func(ctx context.Context, t *Target) (string, error) {
		conn, err := t.grpc()
		if err != nil {
			return "error", err
		}
		if key != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
		}
		err = call(ctx, conn)
		if got := status.Code(err); got != code {
			return got.String(), fmt.Errorf("got %v, want %v", err, code)
		}
		return code.String(), nil
	}}
}

// forgedFlood sends n gRPC calls at once, each with a different forged key
// (every one an unknown key ID, which may trigger a key-table refresh): all
// must be UNAUTHENTICATED, and the refreshes they cause are bounded (the
// case deadline holds).
func (t *Target) forgedFlood(ctx context.Context, n int) (string, error) {
	conn, err := t.grpc()
	if err != nil {
		return "error", err
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			cctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+forged())
			_, err := registryv1.NewRegistryServiceClient(conn).ListModels(cctx, &registryv1.ListModelsRequest{})
			if status.Code(err) != codes.Unauthenticated {
				errs <- fmt.Errorf("forged key: got %v, want Unauthenticated", err)
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return "error", err
	}
	return fmt.Sprintf("%d x %s", n, codes.Unauthenticated), nil
}
