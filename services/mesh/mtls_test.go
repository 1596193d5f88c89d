package mesh

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
	"github.com/bitnet-mesh/bitnet-mesh/shared/certs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery/consultest"
)

func clientTLS(t *testing.T, f certs.Files) *tls.Config {
	t.Helper()
	cfg, err := f.Client()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestMeshAuthTLS runs a registry, an inference node and a router as
// separate services found through a real Consul agent, with API keys and
// TLS: the registry and the node require mesh client certificates (mTLS;
// the node and the router identify themselves to the registry by their
// certificates, Consul's health checks use TLS without one), the router is
// the TLS front door for key holders. A certificate from another CA is
// refused, and a key revoked at the registry stops working at the running
// router within 10 s.
func TestMeshAuthTLS(t *testing.T) {
	agent := consultest.Start(t)
	disc, err := discovery.NewConsul(agent.Addr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dev, err := certs.WriteDev(filepath.Join(dir, "certs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	mtls := certs.Files{Cert: dev.ServerCert, Key: dev.ServerKey, CA: dev.CA, ClientCA: dev.CA}
	base := Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "-", Discovery: disc, Auth: true, TLS: mtls,
		CheckInterval: time.Second, PublishInterval: 100 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		MemoryBudget: 256 << 20, Threads: 1, Version: "auth-e2e",
	}
	with := func(name string, mod func(*Config)) Config {
		c := base
		c.NodeName, c.DataDir = name, filepath.Join(dir, name)
		if mod != nil {
			mod(&c)
		}
		return c
	}
	reg := serve(t, Registry, with("registry", nil))
	admin := readAdminKey(t, filepath.Join(dir, "registry", "admin.key"))
	serve(t, Inference, with("node", nil))
	rt := serve(t, Router, with("router", func(c *Config) { c.TLS.ClientCA = "" })) // public: keys, no client certs

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	operator := sdk.WithTLS(clientTLS(t, certs.Files{CA: dev.CA, Cert: dev.ClientCert, Key: dev.ClientKey}))
	regc := dialKey(t, reg.Addr().String(), admin, operator)
	if _, err := regc.Registry().Push(ctx, "tiny", "../../testdata/models/tiny-gqa-tied-f32", nil); err != nil {
		t.Fatalf("push over mTLS: %v", err)
	}
	_, appKey, err := regc.Keys().Create(ctx, sdk.KeySpec{Name: "app", Scopes: []string{"generate", "read"}})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("mTLS refusals", func(t *testing.T) {
		foreign, err := certs.NewCA("foreign", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := foreign.Issue("intruder", []string{"127.0.0.1"}, certs.ServerAndClient, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		ff := certs.Files{CA: dev.CA, Cert: filepath.Join(dir, "i.crt"), Key: filepath.Join(dir, "i.key")}
		if err := leaf.Write(ff.Cert, ff.Key); err != nil {
			t.Fatal(err)
		}
		intruder := dialKey(t, reg.Addr().String(), admin, sdk.WithTLS(clientTLS(t, ff)))
		if _, err := intruder.Registry().List(ctx, ""); status.Code(err) != codes.Unavailable {
			t.Errorf("registry with a foreign CA's certificate: got %v, want UNAVAILABLE (handshake refused)", err)
		}
		noCert := dialKey(t, reg.Addr().String(), admin, sdk.WithTLS(clientTLS(t, certs.Files{CA: dev.CA})))
		if _, err := noCert.Registry().List(ctx, ""); status.Code(err) != codes.Unauthenticated {
			t.Errorf("registry without a client certificate: got %v, want UNAUTHENTICATED", err)
		}
		// Health checks need no certificate (Consul's and kubelet's).
		conn, err := grpc.NewClient(reg.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(t, certs.Files{CA: dev.CA}))))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Errorf("health check without a certificate: %v", err)
		}
	})

	// The user reaches the router over TLS with a key only.
	user := dialKey(t, rt.Addr().String(), appKey, sdk.WithTLS(clientTLS(t, certs.Files{CA: dev.CA})))
	generateViaRouter(ctx, t, user, "router -> node over mTLS, node fetching over mTLS, Consul checking over TLS")

	t.Run("revocation within 10 s", func(t *testing.T) {
		if _, err := regc.Keys().Revoke(ctx, "app"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for {
			_, err := user.Inference().ListModels(ctx, "")
			if status.Code(err) == codes.Unauthenticated {
				t.Logf("revoked key refused by the router after %v", time.Since(start).Round(time.Millisecond))
				break
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("revoked key still works at the router after 10 s: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// TestMeshServiceKeys: without mTLS, the node and the router call the
// registry (key sync, model download) with service keys of their own; a
// service without a key cannot read the key table and refuses keyed calls
// with UNAVAILABLE (fail closed), never lets them through.
func TestMeshServiceKeys(t *testing.T) {
	disc := newMemDiscovery(t)
	dir := t.TempDir()
	base := Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "-", Discovery: disc, Auth: true, CheckInterval: 200 * time.Millisecond,
		PublishInterval: 100 * time.Millisecond, ShutdownTimeout: 5 * time.Second, MemoryBudget: 256 << 20, Threads: 1}
	with := func(name, key string) Config {
		c := base
		c.NodeName, c.DataDir, c.APIKey = name, filepath.Join(dir, name), key
		return c
	}
	reg := serve(t, Registry, with("registry", ""))
	admin := readAdminKey(t, filepath.Join(dir, "registry", "admin.key"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	regc := dialKey(t, reg.Addr().String(), admin)
	service := func(name string) string {
		_, k, err := regc.Keys().Create(ctx, sdk.KeySpec{Name: name, Scopes: []string{"read"}})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if _, err := regc.Registry().Push(ctx, "tiny", "../../testdata/models/tiny-gqa-tied-f32", nil); err != nil {
		t.Fatal(err)
	}
	_, app, err := regc.Keys().Create(ctx, sdk.KeySpec{Name: "app", Scopes: []string{"generate", "read"}})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, Inference, with("node", service("node-svc")))
	rt := serve(t, Router, with("router", service("router-svc")))
	user := dialKey(t, rt.Addr().String(), app)
	generateViaRouter(ctx, t, user, "service keys")
	// A router without credentials for the registry could not read the key
	// table: refused at start.
	if s, err := Build(Router, with("router-keyless", "")); err == nil || !strings.Contains(err.Error(), "--api-key") {
		if s != nil {
			_ = s.Close()
		}
		t.Errorf("router with --auth and no credentials for the registry: got %v, want an error naming --api-key", err)
	}
	// One whose key cannot read the table fails closed: UNAVAILABLE.
	_, weak, err := regc.Keys().Create(ctx, sdk.KeySpec{Name: "weak", Scopes: []string{"generate"}})
	if err != nil {
		t.Fatal(err)
	}
	weakRouter := serve(t, Router, with("router-weak", weak))
	_, err = dialKey(t, weakRouter.Addr().String(), app).Inference().ListModels(ctx, "")
	if status.Code(err) != codes.Unavailable {
		t.Errorf("router whose key cannot read the key table: got %v, want UNAVAILABLE (fail closed)", err)
	}
}

// generateViaRouter waits until the router behind user sees the one node
// ("node"), then generates tiny@1 there.
func generateViaRouter(ctx context.Context, t *testing.T, user *sdk.Client, how string) {
	t.Helper()
	eventually(t, 30*time.Second, "the router sees the node", func() error {
		ns, err := user.Inference().ListNodes(ctx, "")
		if err == nil && len(ns) != 1 {
			err = status.Errorf(codes.Unavailable, "%d nodes", len(ns))
		}
		return err
	})
	final, err := user.Inference().GenerateText(ctx, &inferencev1.GenerateRequest{Model: "tiny@1", Prompt: "Light", MaxTokens: 2}, nil)
	if err != nil || final.GetNode() != "node" {
		t.Fatalf("generate through the router (%s): node %q, %v", how, final.GetNode(), err)
	}
}
