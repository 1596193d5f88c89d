package mesh

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bitnet-mesh/bitnet-mesh/sdk"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
)

// regConn finds the registry for the quantizer and inference nodes: a fixed
// address, or a bitnet-registry instance (healthy ones first) looked up per
// call, so a restarted registry on a new port is found again. Clients are kept per
// address and closed by Close.
type regConn struct {
	addr string
	disc discovery.Registry
	opts []sdk.Option // credentials, TLS, user agent

	mu      sync.Mutex
	clients map[string]*sdk.Client
	closed  bool
}

func newRegConn(addr string, disc discovery.Registry, opts []sdk.Option) *regConn {
	return &regConn{addr: addr, disc: disc, opts: opts, clients: map[string]*sdk.Client{}}
}

// client returns a registry client, UNAVAILABLE when none is known.
func (r *regConn) client(ctx context.Context) (*sdk.RegistryClient, error) {
	c, err := r.sdkClient(ctx)
	if err != nil {
		return nil, err
	}
	return c.Registry(), nil
}

// sdkClient returns a client of the registry's process (its registry and
// key services), UNAVAILABLE when none is known.
func (r *regConn) sdkClient(ctx context.Context) (*sdk.Client, error) {
	addr := r.addr
	if addr == "" {
		insts, err := r.disc.Instances(ctx, Registry.ServiceName())
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "find registry: %v", err)
		}
		// A healthy instance first; else any registered one, since a check
		// that timed out on a busy machine does not mean the registry is
		// gone (a dead one fails the call with UNAVAILABLE anyway).
		for _, in := range insts {
			if in.Healthy {
				addr = in.HostPort()
				break
			}
		}
		if addr == "" && len(insts) > 0 {
			addr = insts[0].HostPort()
		}
		if addr == "" {
			return nil, status.Errorf(codes.Unavailable, "find registry: no %s instance in discovery", Registry.ServiceName())
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, status.Error(codes.Unavailable, "registry connection closed")
	}
	c, ok := r.clients[addr]
	if !ok {
		var err error
		if c, err = sdk.Dial(ctx, addr, r.opts...); err != nil {
			return nil, fmt.Errorf("registry at %s: %w", addr, err)
		}
		r.clients[addr] = c
	}
	return c, nil
}

func (r *regConn) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for a, c := range r.clients {
		_ = c.Close()
		delete(r.clients, a)
	}
	return nil
}
