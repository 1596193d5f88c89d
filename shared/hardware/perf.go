package hardware

import "github.com/bitnet-mesh/bitnet-mesh/shared/kernels"

// probeBytes is the read probe's buffer: far larger than any cache.
const probeBytes = 256 << 20

// MeasurePerf measures what a node advertises (Perf): its read bandwidth
// at threads threads (a probe of about a second) and the decode and
// prefill estimates of plan (kernels.LoadPlan at the same thread count).
func MeasurePerf(plan kernels.Plan, threads int) Perf {
	dec, pre := plan.Estimate()
	return Perf{ReadGBps: kernels.ReadBandwidth(probeBytes, threads, 2), DecodeTokS: dec, PrefillTokS: pre, Plan: plan.String()}
}
