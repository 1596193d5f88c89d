package main

import (
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
)

// TestModelsWithoutRegistry: an endpoint without the registry API (a lone
// router) lists what its inference API serves.
func TestModelsWithoutRegistry(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	inferencev1.RegisterInferenceServiceServer(gs, fakeInference{})
	go gs.Serve(lis)
	defer gs.Stop()
	out, _, err := runCLI(t, "models", "--remote", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "tiny ") || !strings.Contains(lines[1], "node-a (tiny@1)") {
		t.Errorf("models table:\n%s", out)
	}
}

func TestModelsUnreachable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	_, _, err = runCLI(t, "models", "--remote", addr, "--timeout", "3s")
	if err == nil || !strings.Contains(err.Error(), "Unavailable") {
		t.Errorf("got %v, want Unavailable", err)
	}
}
