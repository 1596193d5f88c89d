package router_test

import (
	"fmt"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/services/router"
	"github.com/bitnet-mesh/bitnet-mesh/shared/hardware"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

// An inference node publishes NodeMeta as its discovery Meta (at start and
// whenever its models or load change); the router reads it back.
func ExampleNodeMeta() {
	hw := hardware.Report{Arch: "amd64", OS: "linux", BestKernel: kernels.AVX2,
		Kernels: []kernels.Path{kernels.Generic, kernels.AVX2}, Features: hardware.Features{AVX2: true}}
	meta := router.NodeMeta{
		Hardware: hw, Version: "0.1.0", Inflight: 2, QueueDepth: 1,
		LoadedModels: []*modelv1.ModelRef{{Name: "tiny", Version: 3}},
	}.Meta()
	fmt.Println(meta[router.KeyLoadedModels], meta[router.KeyInflight], meta[hardware.KeyKernel])

	got, err := router.ParseNodeMeta(meta)
	if err != nil {
		fmt.Println(err)
		return
	}
	ok, _ := got.Hardware.Has("avx512")
	fmt.Println(got.HasModel(&modelv1.ModelRef{Name: "tiny"}), got.QueueDepth, ok)
	// Output:
	// tiny@3 2 avx2
	// true 1 false
}
