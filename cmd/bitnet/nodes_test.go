package main

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
)

func TestNodes(t *testing.T) {
	addr, _ := startMesh(t)
	out, _, err := runCLI(t, "nodes", "--remote", addr)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "node-a") || !strings.Contains(lines[1], "avx2") ||
		!strings.Contains(lines[1], "tiny@1 (bitnet)") || !strings.Contains(lines[1], "1/64") || !strings.Contains(lines[2], "avx512") {
		t.Errorf("nodes table:\n%s", out)
	}
	out, _, err = runCLI(t, "nodes", "--remote", addr, "--json", "--require", "avx512f")
	if err != nil {
		t.Fatal(err)
	}
	var resp inferencev1.ListNodesResponse
	if err := protojson.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("nodes --json: %v\n%s", err, out)
	}
	if len(resp.GetNodes()) != 1 || resp.GetNodes()[0].GetName() != "node-b" {
		t.Errorf("got %v, want node-b only", resp.GetNodes())
	}
	if _, _, err := runCLI(t, "nodes", "--remote", addr, "extra"); err == nil || !strings.Contains(err.Error(), "unexpected argument") {
		t.Errorf("got %v, want an unexpected argument error", err)
	}
}
