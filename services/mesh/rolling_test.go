package mesh

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery/consultest"
)

// TestRollingReplace replaces an inference node the way a Kubernetes
// rolling update (maxSurge 1, maxUnavailable 0) does, while 16 streams
// generate through the router without pause: the new pod starts and
// registers under its own ID (the pod name), then the old one gets SIGTERM
// and runs the binary's shutdown: NOT_SERVING (/readyz fails), deregister
// from Consul, drain, graceful stop. No request may fail, started or not;
// the router must stop choosing the old node while it still accepts
// requests, and send none to it afterwards.
func TestRollingReplace(t *testing.T) {
	agent := consultest.Start(t)
	disc, err := discovery.NewConsul(agent.Addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const drain = 3 * time.Second
	base := Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(), Discovery: disc,
		CheckInterval: time.Second, PublishInterval: 100 * time.Millisecond,
		DrainTimeout: drain, ShutdownTimeout: 10 * time.Second, Version: "rolling", MemoryBudget: 256 << 20,
	}
	with := func(name string) Config {
		c := base
		c.NodeName = name
		return c
	}
	reg := serve(t, Registry, with("bitnet-registry-0"))
	regc := dialSDK(t, reg.Addr().String())
	if _, err := regc.Registry().Push(ctx, "tiny", "../../testdata/models/tiny-gqa-tied-f32", nil); err != nil {
		t.Fatal(err)
	}
	const oldPod, newPod = "bitnet-inference-avx2-7d9f-old", "bitnet-inference-avx2-5c4b-new"
	old := serve(t, Inference, with(oldPod))
	rt := serve(t, Router, with("bitnet-router-0"))
	rc := dialSDK(t, rt.Addr().String())
	nodeNames := func() ([]string, error) {
		ns, err := rc.Inference().ListNodes(ctx, "")
		var got []string
		for _, n := range ns {
			got = append(got, n.GetName())
		}
		slices.Sort(got)
		return got, err
	}
	waitNodes := func(want ...string) {
		t.Helper()
		slices.Sort(want)
		eventually(t, 20*time.Second, fmt.Sprintf("router lists %v", want), func() error {
			got, err := nodeNames()
			if err == nil && !slices.Equal(got, want) {
				err = fmt.Errorf("got nodes %v", got)
			}
			return err
		})
	}
	waitNodes(oldPod)
	if o := generate(ctx, rc, &inferencev1.GenerateRequest{Model: "tiny", Prompt: "Light", MaxTokens: 2}); o.err != nil {
		t.Fatalf("warm-up: %v", o.err)
	}

	// 16 streams, each generating back to back until told to stop.
	var (
		mu    sync.Mutex
		outs  []outcome
		ends  []time.Time
		stop  = make(chan struct{})
		wg    sync.WaitGroup
		count atomic.Int64
	)
	for i := range 16 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				o := generate(ctx, rc, &inferencev1.GenerateRequest{
					Model: "tiny", Prompt: fmt.Sprintf("Light is refracted %d", i), MaxTokens: 24,
				})
				mu.Lock()
				outs, ends = append(outs, o), append(ends, time.Now())
				mu.Unlock()
				count.Add(1)
			}
		})
	}
	eventually(t, 10*time.Second, "traffic flows", func() error {
		if n := count.Load(); n < 32 {
			return fmt.Errorf("%d requests done", n)
		}
		return nil
	})

	// The new pod comes up and becomes ready (the router lists it) before
	// the old one is terminated.
	serve(t, Inference, with(newPod))
	waitNodes(oldPod, newPod)
	time.Sleep(300 * time.Millisecond) // both serve for a while

	// SIGTERM to the old pod: the context ends, Serve runs the shutdown.
	terminated := time.Now()
	old.cancel()
	oldHTTP := "http://" + old.HTTPAddr().String()
	eventually(t, drain/2, "old pod's /readyz fails", func() error {
		resp, err := http.Get(oldHTTP + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return fmt.Errorf("/readyz: got %d, want 503", resp.StatusCode)
		}
		return nil
	})
	waitNodes(newPod)
	dropped := time.Now()
	// Draining: gone from the router, NOT_SERVING, yet still accepting.
	oc := dialSDK(t, old.Addr().String())
	hr, err := healthpb.NewHealthClient(oc.Conn()).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("old pod while draining: got health %v (%v), want NOT_SERVING", hr.GetStatus(), err)
	}
	if o := generate(ctx, oc, &inferencev1.GenerateRequest{Model: "tiny", Prompt: "Light", MaxTokens: 4}); o.err != nil {
		t.Errorf("old pod while draining: a direct request failed: %v (it must accept until the drain ends)", o.err)
	}
	if time.Since(terminated) >= drain {
		t.Errorf("the router dropped the old pod and the direct request took %v, longer than the drain %v: the check proves nothing",
			time.Since(terminated), drain)
	}
	select {
	case err := <-old.done:
		old.once.Do(func() { old.err = err })
		if err != nil {
			t.Errorf("old pod: %v", err)
		}
	case <-time.After(drain + 15*time.Second):
		t.Fatal("old pod did not stop within drain + shutdown timeout")
	}
	stopped := time.Now()
	time.Sleep(500 * time.Millisecond) // traffic on the new pod alone
	close(stop)
	wg.Wait()

	byNode := map[string]int{}
	var failed []error
	var afterStop, acrossTerm int
	for i, o := range outs {
		byNode[o.node]++
		if o.node == oldPod && ends[i].After(terminated) {
			acrossTerm++ // in flight on the old pod at SIGTERM, finished in the drain
		}
		if o.err != nil {
			failed = append(failed, o.err)
		}
		if ends[i].After(stopped) && o.node != newPod {
			afterStop++
		}
	}
	t.Logf("%d requests by node %v, %d of them finished on the old pod after its SIGTERM; router dropped the old pod %v after SIGTERM, it stopped %v after SIGTERM (drain %v)",
		len(outs), byNode, acrossTerm, dropped.Sub(terminated).Round(time.Millisecond), stopped.Sub(terminated).Round(time.Millisecond), drain)
	if len(failed) > 0 {
		t.Errorf("%d of %d requests failed during the replacement, want none; first: %v", len(failed), len(outs), failed[0])
	}
	if byNode[oldPod] == 0 || byNode[newPod] == 0 {
		t.Errorf("got requests by node %v, want both pods to serve", byNode)
	}
	if acrossTerm == 0 {
		t.Errorf("no request was in flight on the old pod at SIGTERM: the drain went untested")
	}
	if afterStop > 0 {
		t.Errorf("%d requests ended after the old pod stopped on another node than %s", afterStop, newPod)
	}
	if !dropped.Before(stopped) {
		t.Errorf("router dropped the old pod at %v, after it stopped at %v", dropped, stopped)
	}
}
