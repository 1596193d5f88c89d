package discovery_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
	"github.com/bitnet-mesh/bitnet-mesh/shared/server"
)

// A service announces itself while it serves and leaves on shutdown; a
// router watches the healthy set. NewMemory stands in for NewConsul(addr).
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := discovery.NewMemory()
	defer reg.Close()

	srv, err := server.New(server.WithGRPCAddr("127.0.0.1:0"), server.WithHTTPAddr(""),
		server.WithDrainTimeout(100*time.Millisecond))
	if err != nil {
		fmt.Println(err)
		return
	}
	inst := discovery.Instance{
		ID: "inference-1", Service: "bitnet-inference",
		Address: "127.0.0.1", Port: srv.Addr().(*net.TCPAddr).Port,
		Meta: map[string]string{"kernel": "avx2"},
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	if err := reg.Register(ctx, inst, discovery.WithCheckInterval(50*time.Millisecond)); err != nil {
		fmt.Println(err)
		return
	}

	wctx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	nodes, _ := reg.Watch(wctx, "bitnet-inference")
	for list := range nodes {
		if len(list) == 1 {
			fmt.Println("healthy:", list[0].ID, list[0].Meta["kernel"])
			break
		}
	}

	cancel() // shutdown: NOT_SERVING, so the watch drops the node during the drain
	for list := range nodes {
		if len(list) == 0 {
			fmt.Println("gone")
			break
		}
	}
	<-done
	_ = reg.Deregister(context.Background(), inst.ID)
	// Output:
	// healthy: inference-1 avx2
	// gone
}
