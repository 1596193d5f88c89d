package router

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

func TestAggregates(t *testing.T) {
	reg := discovery.NewMemory()
	t.Cleanup(func() { _ = reg.Close() })
	startNode(t, reg, "a", kernels.AVX512, 0)
	startNode(t, reg, "b", kernels.AVX2, 0, withLoaded("tiny@2", "big@1"))
	r, c := startRouter(t, reg, WithIdentity("front", "v9"))
	waitNodes(t, r, "a", "b")
	ctx := t.Context()

	models, err := c.ListModels(ctx, &inferencev1.ListModelsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range models.GetModels() {
		var where []string
		for _, l := range m.GetLoaded() {
			where = append(where, l.GetNode())
		}
		got = append(got, fmt.Sprintf("%s%v", m.GetName(), where))
	}
	if want := "[big[] tiny[a b]]"; fmt.Sprint(got) != want {
		t.Errorf("got ListModels %v, want %s", got, want)
	}

	st, err := c.ModelStatus(ctx, &inferencev1.ModelStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.GetLoaded()) != 2 || st.GetMemoryBudgetBytes() != 2000 || st.GetMemoryUsedBytes() != 200 || len(st.GetCached()) != 1 {
		t.Errorf("got ModelStatus %v, want 2 loaded, budget 2000, used 200, 1 cached", st)
	}
	if _, err := c.ModelStatus(ctx, &inferencev1.ModelStatusRequest{Model: "Bad Name"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("ModelStatus of a bad ref: got %v, want InvalidArgument", err)
	}

	for _, tt := range []struct {
		req  *inferencev1.ListNodesRequest
		want string
	}{
		{&inferencev1.ListNodesRequest{}, "[a:avx512 b:avx2]"},
		{&inferencev1.ListNodesRequest{Require: []string{"avx512"}}, "[a:avx512]"},
		{&inferencev1.ListNodesRequest{Model: "tiny"}, "[b:avx2]"},
		{&inferencev1.ListNodesRequest{Model: "tiny@3"}, "[]"},
	} {
		resp, err := c.ListNodes(ctx, tt.req)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range resp.GetNodes() {
			got = append(got, n.GetName()+":"+n.GetHardware().GetKernel())
			if n.GetAddress() == "" || !n.GetHealthy() || n.GetLoad() == nil || n.GetVersion() != "test" || n.GetStartTime() == nil {
				t.Errorf("node %s: got %v, want address, healthy, load, version test, start time", n.GetName(), n)
			}
		}
		if fmt.Sprint(got) != tt.want {
			t.Errorf("ListNodes(%v): got %v, want %s", tt.req, got, tt.want)
		}
	}
	if _, err := c.ListNodes(ctx, &inferencev1.ListNodesRequest{Require: []string{"warp"}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("ListNodes require warp: got %v, want InvalidArgument", err)
	}

	info, err := c.NodeInfo(ctx, &inferencev1.NodeInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := info.GetNode(); n.GetName() != "front" || n.GetVersion() != "v9" || len(n.GetLoaded()) != 2 || n.GetHardware().GetKernel() != "" {
		t.Errorf("got NodeInfo %v, want front v9 with 2 loaded and no hardware", n)
	}

	// Tokenize goes where the model is loaded, even to a slower tier.
	for range 3 {
		tok, err := c.Tokenize(ctx, &inferencev1.TokenizeRequest{Model: "tiny", Text: "abc"})
		if err != nil || len(tok.GetTokens()) != 1 || tok.GetTokens()[0] != "b" {
			t.Fatalf("got Tokenize %v err %v, want it served by b", tok, err)
		}
	}
	if _, err := c.Tokenize(ctx, &inferencev1.TokenizeRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Tokenize without model: got %v, want InvalidArgument", err)
	}
	// The test node does not implement these: the node's code comes back.
	if _, err := c.LoadModel(ctx, &inferencev1.LoadModelRequest{Model: "tiny", Node: "a"}); status.Code(err) != codes.Unimplemented {
		t.Errorf("LoadModel on a: got %v, want the node's Unimplemented", err)
	}
	if _, err := c.LoadModel(ctx, &inferencev1.LoadModelRequest{Model: "tiny", Node: "zz"}); status.Code(err) != codes.NotFound {
		t.Errorf("LoadModel on an unknown node: got %v, want NotFound", err)
	}
	if _, err := c.LoadModel(ctx, &inferencev1.LoadModelRequest{Model: "tiny", Node: "b", Require: []string{"avx512"}}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("LoadModel on b requiring avx512: got %v, want FailedPrecondition", err)
	}
	if _, err := c.UnloadModel(ctx, &inferencev1.UnloadModelRequest{Model: "tiny"}); status.Code(err) != codes.Unimplemented {
		t.Errorf("UnloadModel: got %v, want the nodes' Unimplemented", err)
	}
}
