package router

import (
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

// BenchmarkGenerateTTFT measures time to first token of a 4-token Generate
// against one test node, directly and through the router, and reports the
// p50 (the router's overhead is the difference: one more loopback gRPC hop
// plus scheduling). Run:
//
//	go test -run X -bench GenerateTTFT -benchtime 3000x ./services/router/
func BenchmarkGenerateTTFT(b *testing.B) {
	reg := discovery.NewMemory()
	b.Cleanup(func() { _ = reg.Close() })
	n := startNode(b, reg, "n", kernels.AVX2, 0)
	r, viaRouter := startRouter(b, reg)
	waitNodes(b, r, "n")
	conn, err := grpc.NewClient(net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	direct := inferencev1.NewInferenceServiceClient(conn)

	for _, bc := range []struct {
		name   string
		client inferencev1.InferenceServiceClient
	}{{"direct", direct}, {"router", viaRouter}} {
		b.Run(bc.name, func(b *testing.B) {
			req := &inferencev1.GenerateRequest{Model: "tiny", Prompt: "Light is"}
			ttfts := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				stream, err := bc.client.Generate(b.Context(), req)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := stream.Recv(); err != nil {
					b.Fatal(err)
				}
				ttfts = append(ttfts, time.Since(start))
				for {
					if _, err := stream.Recv(); errors.Is(err, io.EOF) {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
			}
			slices.Sort(ttfts)
			b.ReportMetric(float64(ttfts[len(ttfts)/2].Microseconds()), "p50-ttft-µs")
			b.ReportMetric(float64(ttfts[len(ttfts)*99/100].Microseconds()), "p99-ttft-µs")
		})
	}
}
