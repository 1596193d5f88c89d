//go:build !(darwin && arm64)

package metal_test

import (
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/metal"
)

// realGPU: no Metal GPU off darwin/arm64.
func realGPU(testing.TB) *metal.GPU { return nil }
