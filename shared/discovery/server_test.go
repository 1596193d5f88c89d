package discovery

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/server"
)

// The shutdown sequence the mesh relies on: a shared/server in its drain
// reports NOT_SERVING, so watchers drop it before it stops taking RPCs;
// then the service deregisters.
func TestServerDrainLeavesWatch(t *testing.T) {
	for _, im := range impls(t) {
		t.Run(im.name, func(t *testing.T) {
			reg := im.new(t)
			const drain = 3 * time.Second
			srv, err := server.New(server.WithGRPCAddr("127.0.0.1:0"), server.WithHTTPAddr(""),
				server.WithDrainTimeout(drain))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx) }()

			svc := uniq("srv")
			i := Instance{ID: uniq("srv"), Service: svc, Address: "127.0.0.1", Port: srv.Addr().(*net.TCPAddr).Port}
			if err := reg.Register(ctx, i, checkOpts...); err != nil {
				t.Fatal(err)
			}
			wctx, wcancel := context.WithCancel(context.Background())
			defer wcancel()
			ch, err := reg.Watch(wctx, svc)
			if err != nil {
				t.Fatal(err)
			}
			await(t, ch, "server registered", func(l []Instance) bool { return len(l) == 1 })

			stopAt := time.Now()
			cancel()
			await(t, ch, "draining server leaves", func(l []Instance) bool { return len(l) == 0 })
			if d := time.Since(stopAt); d >= drain {
				t.Errorf("left the watch after %v, want within the drain %v", d, drain)
			}
			dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer dcancel()
			if err := reg.Deregister(dctx, i.ID); err != nil {
				t.Errorf("deregister on shutdown: %v", err)
			}
			if err := <-done; err != nil {
				t.Errorf("Serve: got %v, want nil", err)
			}
			if list, _ := reg.Instances(dctx, svc); len(list) != 0 {
				t.Errorf("after shutdown: got %+v, want none", list)
			}
		})
	}
}
