package main

import (
	"os"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

// TestMain keeps the commands' tests from measuring kernel plans (seconds
// each on a 2B4T shape set): run reads the process environment, so they get
// the static plan unless the environment asks otherwise. Plans are tested
// in package kernels and by TestBenchKernelsPlan.
//
// With BITNET_TEST_RUN_MAIN=1 the test binary is the bitnet command
// instead (tests that SIGKILL a `bitnet up` run it as a child).
func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		main()
		os.Exit(0)
	}
	if os.Getenv(kernels.EnvPlan) == "" {
		os.Setenv(kernels.EnvPlan, string(kernels.PlanStatic))
	}
	os.Exit(m.Run())
}
