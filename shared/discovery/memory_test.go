package discovery

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Memory honours deregister-after (Consul enforces a 1 min minimum, too
// slow for a unit test).
func TestMemoryDeregistersCritical(t *testing.T) {
	m := NewMemory()
	defer m.Close()
	ctx := context.Background()
	n := startNode(t)
	i := inst("reap", n, nil)
	if err := m.Register(ctx, i, append(checkOpts, WithDeregisterAfter(time.Second))...); err != nil {
		t.Fatal(err)
	}
	waitInstances(t, m, i.Service, func(l []Instance) bool { return len(l) == 1 && l[0].Healthy })
	n.srv.Stop()
	waitInstances(t, m, i.Service, func(l []Instance) bool { return len(l) == 0 })
}

func waitInstances(t *testing.T, r Registry, service string, ok func([]Instance) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		list, err := r.Instances(context.Background(), service)
		if err == nil && ok(list) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("instances of %s: got %+v, %v, not as wanted within %v", service, list, err, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMemoryClose(t *testing.T) {
	m := NewMemory()
	ctx := context.Background()
	ch, err := m.Watch(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t)
	if err := m.Register(ctx, inst("s", n, nil), checkOpts...); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for range ch { // drains, then ends: Close closed it
	}
	if err := m.Register(ctx, inst("s", n, nil)); !errors.Is(err, errClosed) {
		t.Errorf("Register after Close: got %v, want errClosed", err)
	}
	if _, err := m.Watch(ctx, "s"); !errors.Is(err, errClosed) {
		t.Errorf("Watch after Close: got %v, want errClosed", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
}

// A slow reader gets the newest set, not a backlog.
func TestWatchKeepsLatest(t *testing.T) {
	m := NewMemory()
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := m.Watch(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := m.Register(ctx, Instance{ID: id, Service: "s", Address: "h", Port: 1}, WithoutHealthCheck()); err != nil {
			t.Fatal(err)
		}
	}
	if got := ids(<-ch); got != "a,b,c" {
		t.Errorf("got %q, want the latest set a,b,c", got)
	}
	select {
	case l := <-ch:
		t.Errorf("got stale set %q, want nothing pending", ids(l))
	default:
	}
	// Lists handed out are copies.
	if err := m.UpdateMeta(ctx, "a", map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	l := <-ch
	l[0].Meta["k"] = "changed"
	if got, _ := m.Instances(ctx, "s"); got[0].Meta["k"] != "v" {
		t.Errorf("got meta %v after caller's change, want registry unaffected", got[0].Meta)
	}
}

func TestConsulUnreachable(t *testing.T) {
	c, err := NewConsul("127.0.0.1:1", WithRetryBackoff(10*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Instances(ctx, "s"); err == nil {
		t.Error("Instances: got nil error, want connection refused")
	}
	if err := c.Register(ctx, Instance{ID: "x", Service: "s", Address: "h", Port: 1}); err == nil {
		t.Error("Register: got nil error, want connection refused")
	}
	wctx, wcancel := context.WithCancel(ctx)
	ch, err := c.Watch(wctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // several failed queries, retried
	wcancel()
	for l := range ch {
		t.Errorf("got %v from an unreachable agent, want nothing", l)
	}
	for _, tt := range []struct {
		addr string
		opts []ConsulOption
	}{
		{"", nil},
		{"127.0.0.1:8500", []ConsulOption{WithWatchWait(0)}},
		{"127.0.0.1:8500", []ConsulOption{WithRetryBackoff(time.Second, time.Millisecond)}},
	} {
		if _, err := NewConsul(tt.addr, tt.opts...); err == nil {
			t.Errorf("NewConsul(%q): got nil error, want one", tt.addr)
		}
	}
}
