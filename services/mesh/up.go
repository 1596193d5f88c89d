package mesh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/auth"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metrics"
)

// Endpoints are the public addresses of a mesh started by Up.
type Endpoints struct {
	GRPC net.Addr // router (bitnet.inference.v1), registry and quantizer
	HTTP net.Addr // their REST gateways; nil when disabled
	Node net.Addr // the inference node's internal loopback listener
	// AdminKeyFile is the file holding the admin key this start created
	// (Auth, first start); "" otherwise.
	AdminKeyFile string
}

// Up serves the whole mesh in one process until ctx is done: the registry,
// quantizer, trainer and router on the public listeners of cfg (one gRPC server, one
// REST mux), and an inference node on an internal loopback port that
// registers in discovery like a remote node. cfg.Discovery defaults to an
// in-process discovery.Memory. ready, when set, is called once the router
// sees the node. The public /metrics carries every service's metrics, the
// node's with a label node="NAME". Up returns nil after a clean shutdown.
func Up(ctx context.Context, cfg Config, ready func(Endpoints)) error {
	if cfg.Discovery == nil {
		mem := discovery.NewMemory()
		defer mem.Close()
		cfg.Discovery = mem
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = time.Second // in process: find the node quickly
	}
	pub, err := build(cfg, []Kind{Registry, Quantizer, Trainer, Router})
	if err != nil {
		return err
	}
	ncfg := cfg
	ncfg.GRPCAddr, ncfg.HTTPAddr, ncfg.GRPCListener, ncfg.HTTPListener = "127.0.0.1:0", "-", nil, nil
	ncfg.MetricsAddr = "" // the public server's /metrics includes the node's
	ncfg.Advertise = "127.0.0.1"
	ncfg.RegistryAddr = dialable(pub.Addr())
	// The node keeps a registry of its own (its per-RPC series would mix
	// with the router's for the same methods) that the public /metrics
	// includes, labelled node="NAME".
	ncfg.Metrics = metrics.NewRegistry()
	if cfg.NodeName == "" {
		ncfg.NodeName = "local"
	}
	// The node checks keys against the public server's table (no network
	// hop) and calls the registry with a key that exists only in that
	// table, for this process's life.
	ncfg.keys = pub.Keys()
	ncfg.quiet = true
	if ncfg.keys != nil {
		tok, err := auth.NewToken()
		if err != nil {
			_ = pub.Close()
			return err
		}
		ncfg.keys.AddStatic(auth.Key{ID: tok.ID, Name: "bitnet-up-node", Scopes: auth.Scopes{auth.ScopeRead}, Hash: tok.Hash(), CreateTime: time.Now()})
		ncfg.APIKey = tok.String()
	}
	node, err := build(ncfg, []Kind{Inference})
	if err != nil {
		_ = pub.Close()
		return err
	}
	if err := pub.Server().Metrics().Include(ncfg.Metrics, metrics.Label{Name: "node", Value: ncfg.NodeName}); err != nil {
		_ = node.Close()
		_ = pub.Close()
		return fmt.Errorf("mesh: node metrics: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	for _, s := range []*Service{pub, node} {
		go func() {
			err := s.Serve(ctx)
			cancel() // one stopping stops the mesh
			errc <- err
		}()
	}
	readyDone := make(chan struct{})
	go func() {
		defer close(readyDone)
		if waitReady(ctx, pub) == nil && ready != nil {
			ready(Endpoints{GRPC: pub.Addr(), HTTP: pub.HTTPAddr(), Node: node.Addr(), AdminKeyFile: pub.AdminKeyFile()})
		}
	}()
	err = errors.Join(<-errc, <-errc)
	<-readyDone // ends with ctx, cancelled once a Serve returned
	return err
}

// waitReady polls until s is ready (the router knows a usable node).
func waitReady(ctx context.Context, s *Service) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if err := s.Ready(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("mesh: waiting for an inference node: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// dialable turns a listen address into one a client can dial (an
// unspecified host becomes loopback).
func dialable(a net.Addr) string {
	host, port, err := advertised(a, "")
	if err != nil {
		return a.String()
	}
	return net.JoinHostPort(host, fmt.Sprint(port))
}
