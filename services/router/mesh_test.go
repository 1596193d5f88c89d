package router

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery/consultest"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/server"
)

// TestREST serves the router through shared/server's gateway, as `bitnet
// up` does, and checks the REST contract: NDJSON lines, the last naming
// node and kernel; an unmet constraint is a 400 with the reason.
func TestREST(t *testing.T) {
	reg := discovery.NewMemory()
	t.Cleanup(func() { _ = reg.Close() })
	startNode(t, reg, "n-avx2", kernels.AVX2, 0)
	startNode(t, reg, "n-avx512", kernels.AVX512, 0)
	r, err := New(WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	waitNodes(t, r, "n-avx2", "n-avx512")
	if err := r.Ready(ctx); err != nil {
		t.Errorf("got Ready %v with two nodes, want nil", err)
	}
	opts := append(r.ServerOptions(), server.WithGRPCAddr("127.0.0.1:0"), server.WithHTTPAddr("127.0.0.1:0"))
	srv, err := server.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	base := "http://" + srv.HTTPAddr().String()

	resp, err := http.Post(base+"/v1/generate", "application/json",
		strings.NewReader(`{"model": "tiny", "prompt": "Light is", "max_tokens": 3, "temperature": 0, "require": ["avx512"]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got status %d, want 200", resp.StatusCode)
	}
	var lines []map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 {
		t.Fatalf("got %d NDJSON lines %v, want 3", len(lines), lines)
	}
	last := lines[2]
	if last["node"] != "n-avx512" || last["kernel"] != "avx512" || last["finish_reason"] != "FINISH_REASON_LENGTH" {
		t.Errorf("got last line %v, want node n-avx512, kernel avx512, finish reason", last)
	}

	resp2, err := http.Post(base+"/v1/generate", "application/json", strings.NewReader(`{"model": "tiny", "prompt": "x", "require": ["neon"]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	var body strings.Builder
	_, _ = bufio.NewReader(resp2.Body).WriteTo(&body)
	if resp2.StatusCode != http.StatusBadRequest || !strings.Contains(body.String(), "no inference node offers neon") {
		t.Errorf("got %d %s, want 400 naming neon", resp2.StatusCode, body.String())
	}
}

// TestConsul runs the routing over a real Consul agent (skipped without
// one, failing under CI): blocking-query watches, health checks, and a
// dead node dropped within 5 s.
func TestConsul(t *testing.T) {
	agent := consultest.Start(t)
	reg, err := discovery.NewConsul(agent.Addr, discovery.WithWatchWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n512 := startNode(t, reg, "c-avx512", kernels.AVX512, time.Second)
	startNode(t, reg, "c-avx2", kernels.AVX2, time.Second)
	t.Cleanup(func() {
		for _, id := range []string{"c-avx512", "c-avx2"} {
			_ = reg.Deregister(context.Background(), id)
		}
	})
	r, c := startRouter(t, reg)
	waitNodes(t, r, "c-avx2", "c-avx512")
	for range 3 {
		node, kernel, _, err := generate(t.Context(), c, &inferencev1.GenerateRequest{Model: "tiny", Require: []string{"avx512"}})
		if err != nil || node != "c-avx512" || kernel != "avx512" {
			t.Fatalf("got node %q kernel %q err %v, want c-avx512 avx512", node, kernel, err)
		}
	}
	n512.kill()
	killed := time.Now()
	waitNodes(t, r, "c-avx2")
	if d := time.Since(killed); d > 5*time.Second {
		t.Errorf("dead node dropped after %v, want within 5 s", d)
	}
	node, _, _, err := generate(t.Context(), c, &inferencev1.GenerateRequest{Model: "tiny"})
	if err != nil || node != "c-avx2" {
		t.Errorf("got node %q err %v after the kill, want c-avx2", node, err)
	}
	_, _, _, err = generate(t.Context(), c, &inferencev1.GenerateRequest{Model: "tiny", Require: []string{"avx512"}})
	if err == nil || !strings.Contains(err.Error(), "no inference node offers avx512") {
		t.Errorf("got %v requiring avx512 after the kill, want FailedPrecondition naming avx512", err)
	}
}
