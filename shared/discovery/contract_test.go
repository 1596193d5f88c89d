package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery/consultest"
)

// The contract every Registry meets, run against Memory and Consul.

const (
	checkInterval = 500 * time.Millisecond
	within        = 5 * time.Second // how fast changes must show
)

var checkOpts = []RegisterOption{WithCheckInterval(checkInterval), WithCheckTimeout(400 * time.Millisecond)}

type impl struct {
	name string
	new  func(t *testing.T) Registry
}

func impls(t *testing.T) []impl {
	return []impl{
		{"memory", func(t *testing.T) Registry {
			m := NewMemory()
			t.Cleanup(func() { _ = m.Close() })
			return m
		}},
		{"consul", func(t *testing.T) Registry {
			a := consultest.Start(t)
			c, err := NewConsul(a.Addr, WithRetryBackoff(50*time.Millisecond, time.Second))
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
	}
}

// node is a gRPC server with a health service, stopped at test end.
type node struct {
	port   int
	health *health.Server
	srv    *grpc.Server
}

func startNode(t *testing.T) *node {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &node{port: lis.Addr().(*net.TCPAddr).Port, health: health.NewServer(), srv: grpc.NewServer()}
	healthpb.RegisterHealthServer(n.srv, n.health)
	go func() { _ = n.srv.Serve(lis) }() // ends with Stop
	t.Cleanup(n.srv.Stop)
	return n
}

var seq atomic.Int64

// uniq makes names unique within a run, since Consul agents are shared.
func uniq(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

func inst(service string, n *node, meta map[string]string) Instance {
	return Instance{ID: uniq(service), Service: service, Address: "127.0.0.1", Port: n.port, Meta: meta, Tags: []string{"t1"}}
}

// await reads lists from ch until ok accepts one, failing after within.
// It returns the accepted list and every list seen before it.
func await(t *testing.T, ch <-chan []Instance, what string, ok func([]Instance) bool) (got []Instance, seen [][]Instance) {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case list, open := <-ch:
			if !open {
				t.Fatalf("%s: watch closed, seen %v", what, seen)
			}
			if ok(list) {
				return list, seen
			}
			seen = append(seen, list)
		case <-timer.C:
			t.Fatalf("%s: not within %v; lists seen: %v", what, within, seen)
		}
	}
}

// eventually polls cond until it holds, failing with its last description
// after within.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last got %s", what, within, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ids(list []Instance) string {
	var s []string
	for _, i := range list {
		s = append(s, i.ID)
	}
	return strings.Join(s, ",")
}

func TestContract(t *testing.T) {
	for _, im := range impls(t) {
		t.Run(im.name, func(t *testing.T) {
			reg := im.new(t)
			t.Run("lifecycle", func(t *testing.T) { testLifecycle(t, reg) })
			t.Run("health", func(t *testing.T) { testHealth(t, reg) })
			t.Run("no check", func(t *testing.T) { testNoCheck(t, reg) })
			t.Run("bad input", func(t *testing.T) { testBadInput(t, reg) })
			t.Run("watch ends", func(t *testing.T) { testWatchEnds(t, reg) })
		})
	}
}

// Register -> passing -> seen by Watch and Instances -> UpdateMeta seen
// without flapping -> Deregister seen.
func testLifecycle(t *testing.T, reg Registry) {
	ctx := context.Background()
	svc := uniq("svc")
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := reg.Watch(wctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	await(t, ch, "initial empty set", func(l []Instance) bool { return len(l) == 0 })

	n := startNode(t)
	a := inst(svc, n, map[string]string{"arch": "amd64", "kernel": "avx2"})
	if err := reg.Register(ctx, a, checkOpts...); err != nil {
		t.Fatal(err)
	}
	got, _ := await(t, ch, "instance appears", func(l []Instance) bool { return len(l) == 1 })
	g := got[0]
	if g.ID != a.ID || g.Service != svc || g.Address != "127.0.0.1" || g.Port != n.port || !g.Healthy ||
		g.Meta["kernel"] != "avx2" || len(g.Tags) != 1 || g.Tags[0] != "t1" {
		t.Errorf("got %+v, want healthy copy of %+v", g, a)
	}
	list, err := reg.Instances(ctx, svc)
	if err != nil || len(list) != 1 || !list[0].Healthy {
		t.Errorf("Instances: got %+v, %v, want the one healthy instance", list, err)
	}

	// A second instance; then meta updates on the first.
	b := inst(svc, n, nil)
	if err := reg.Register(ctx, b, checkOpts...); err != nil {
		t.Fatal(err)
	}
	await(t, ch, "second instance", func(l []Instance) bool { return len(l) == 2 })
	if err := reg.UpdateMeta(ctx, a.ID, map[string]string{"kernel": "avx2", "load": "3"}); err != nil {
		t.Fatal(err)
	}
	_, seen := await(t, ch, "meta update", func(l []Instance) bool {
		return len(l) == 2 && l[0].Meta["load"] == "3"
	})
	for _, l := range seen {
		if len(l) != 2 {
			t.Errorf("during UpdateMeta: got set %s, want both instances throughout", ids(l))
		}
	}
	time.Sleep(2 * checkInterval) // a re-registered check must not turn critical
	if list, _ := reg.Instances(ctx, svc); len(list) != 2 || !list[0].Healthy || !list[1].Healthy {
		t.Errorf("after UpdateMeta: got %+v, want both healthy", list)
	}

	if err := reg.Deregister(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	await(t, ch, "deregistered instance leaves", func(l []Instance) bool { return len(l) == 1 && l[0].ID == b.ID })
	if err := reg.Deregister(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if err := reg.Deregister(ctx, b.ID); err != nil {
		t.Errorf("second Deregister: got %v, want nil", err)
	}
	if list, err := reg.Instances(ctx, svc); err != nil || len(list) != 0 {
		t.Errorf("Instances after deregister: got %+v, %v, want none", list, err)
	}
	if err := reg.UpdateMeta(ctx, a.ID, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateMeta of deregistered: got %v, want ErrNotFound", err)
	}
}

// NOT_SERVING and a stopped server both leave the healthy set within 5 s.
func testHealth(t *testing.T, reg Registry) {
	ctx := context.Background()
	svc := uniq("health")
	n1, n2 := startNode(t), startNode(t)
	a, b := inst(svc, n1, nil), inst(svc, n2, nil)
	for _, i := range []Instance{a, b} {
		if err := reg.Register(ctx, i, checkOpts...); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = reg.Deregister(ctx, i.ID) }()
	}
	// Unhealthy until the first check passes.
	if list, _ := reg.Instances(ctx, svc); len(list) == 2 && list[0].Healthy && list[1].Healthy {
		t.Log("both passed their first check already") // allowed, if fast
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := reg.Watch(wctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	await(t, ch, "both healthy", func(l []Instance) bool { return len(l) == 2 })

	n1.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	await(t, ch, "NOT_SERVING leaves", func(l []Instance) bool { return ids(l) == b.ID })
	// Instances reads the catalog again; a check that answered just before
	// NOT_SERVING (or timed out just before it, under -race on a busy CI
	// host) can still be in flight, so the listing converges rather than
	// being read once (a one-shot read failed CI once: a passing again).
	eventually(t, "Instances lists both, one unhealthy", func() (bool, string) {
		list, err := reg.Instances(ctx, svc)
		healthy := map[string]bool{}
		for _, i := range list {
			healthy[i.ID] = i.Healthy
		}
		ok := err == nil && len(list) == 2 && !healthy[a.ID] && healthy[b.ID]
		return ok, fmt.Sprintf("%+v, %v", list, err)
	})
	n1.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	await(t, ch, "SERVING again returns", func(l []Instance) bool { return len(l) == 2 })

	n2.srv.Stop()
	await(t, ch, "stopped server leaves", func(l []Instance) bool { return ids(l) == a.ID })
}

func testNoCheck(t *testing.T, reg Registry) {
	ctx := context.Background()
	i := Instance{ID: uniq("nc"), Service: uniq("nocheck"), Address: "127.0.0.1", Port: 1}
	if err := reg.Register(ctx, i, WithoutHealthCheck()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = reg.Deregister(ctx, i.ID) }()
	list, err := reg.Instances(ctx, i.Service)
	if err != nil || len(list) != 1 || !list[0].Healthy {
		t.Errorf("got %+v, %v, want one healthy instance without a check", list, err)
	}
}

func testBadInput(t *testing.T, reg Registry) {
	ctx := context.Background()
	ok := Instance{ID: "x", Service: "s", Address: "127.0.0.1", Port: 5}
	tests := []struct {
		name string
		mod  func(*Instance)
		opts []RegisterOption
	}{
		{"empty id", func(i *Instance) { i.ID = "" }, nil},
		{"empty service", func(i *Instance) { i.Service = "" }, nil},
		{"empty address", func(i *Instance) { i.Address = "" }, nil},
		{"port 0", func(i *Instance) { i.Port = 0 }, nil},
		{"port 70000", func(i *Instance) { i.Port = 70000 }, nil},
		{"meta key", func(i *Instance) { i.Meta = map[string]string{"a.b": "1"} }, nil},
		{"meta reserved", func(i *Instance) { i.Meta = map[string]string{"consul-x": "1"} }, nil},
		{"meta value", func(i *Instance) { i.Meta = map[string]string{"a": strings.Repeat("v", 513)} }, nil},
		{"zero interval", func(*Instance) {}, []RegisterOption{WithCheckInterval(0)}},
	}
	for _, tt := range tests {
		i := ok
		tt.mod(&i)
		if err := reg.Register(ctx, i, tt.opts...); err == nil {
			t.Errorf("%s: got nil error, want one", tt.name)
			_ = reg.Deregister(ctx, i.ID)
		}
	}
	if err := reg.UpdateMeta(ctx, "no-such-id", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateMeta unknown: got %v, want ErrNotFound", err)
	}
	if _, err := reg.Watch(ctx, ""); err == nil {
		t.Error("Watch empty service: got nil error, want one")
	}
}

func testWatchEnds(t *testing.T, reg Registry) {
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := reg.Watch(ctx, uniq("ends"))
	if err != nil {
		t.Fatal(err)
	}
	<-ch
	cancel()
	select {
	case _, open := <-ch:
		if open {
			// A last list may race with the cancel; the close must follow.
			if _, open = <-ch; open {
				t.Error("got a second list after cancel, want the channel closed")
			}
		}
	case <-time.After(within):
		t.Error("watch channel not closed after cancel")
	}
}
