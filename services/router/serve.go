package router

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/server"
)

// ServerOptions plugs the router into a shared/server Server: its gRPC
// service and its REST routes (the inference gateway: /v1/generate,
// /v1/models, /v1/nodes, ...). Pass WithMetrics(srv's registry) to New to
// export the router's metrics with the server's. Add
// server.WithReadiness(r.Ready) to fail /readyz while no node is usable.
func (r *Router) ServerOptions() []server.Option {
	return []server.Option{
		server.WithRegister(func(s *grpc.Server) { r.Register(s) }),
		server.WithGateway(inferencev1.RegisterInferenceServiceHandler),
	}
}

// Ready reports whether requests can be routed: UNAVAILABLE while no
// healthy inference node with readable meta is known.
func (r *Router) Ready(context.Context) error {
	if r.usableNodes() == 0 {
		return status.Error(codes.Unavailable, "router: no healthy inference node")
	}
	return nil
}
