package inference_test

import (
	"context"
	"log"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/proto/gateway"
	"github.com/bitnet-mesh/bitnet-mesh/services/inference"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

// An inference node serving the models of a local directory over gRPC, with
// the REST gateway on the same service.
func Example() {
	srv, err := inference.NewServer(inference.DirFetcher{Root: "testdata/models"},
		inference.WithNodeName("node-a"),
		inference.WithKernelCap(kernels.AVX2), // --kernel avx2
		inference.WithQueueSize(32),
		inference.WithManager(inference.WithMemoryBudget(4<<30)),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	gs := grpc.NewServer()
	srv.Register(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:50051")
	if err != nil {
		log.Fatal(err)
	}
	go gs.Serve(lis)
	defer gs.GracefulStop()

	// REST through a gRPC connection: the gateway's in-process handlers do
	// not support Generate's server stream.
	mux := gateway.NewServeMux()
	dial := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if err := inferencev1.RegisterInferenceServiceHandlerFromEndpoint(context.Background(), mux, lis.Addr().String(), dial); err != nil {
		log.Fatal(err)
	}
	_ = mux // serve with http.Server{Handler: mux}
}
