package hardware_test

import (
	"fmt"
	"log"

	"github.com/bitnet-mesh/bitnet-mesh/shared/hardware"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

// An inference node started with --kernel generic advertises only that path.
func ExampleDetect() {
	r, err := hardware.Detect(hardware.WithKernelCap(kernels.Generic))
	if err != nil {
		log.Fatal(err) // the CPU cannot run the capped path
	}
	meta := r.Meta() // service Meta for Consul
	fmt.Println(meta[hardware.KeyKernel], meta[hardware.KeyKernels])
	// Output: generic generic
}

// The router rebuilds a node's report from its Meta and checks a request's
// requirements against it.
func ExampleParseMeta() {
	r, err := hardware.ParseMeta(map[string]string{
		"kernel": "avx2", "kernels": "generic,avx2", "kernel_cap": "avx2", "avx2": "true", "avx512vnni": "false",
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, req := range []string{"avx2", "avx512", "avx512vnni"} {
		ok, _ := r.Has(req)
		fmt.Println(req, ok)
	}
	// Output:
	// avx2 true
	// avx512 false
	// avx512vnni false
}
