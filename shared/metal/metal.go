// Package metal is the Apple Metal (GPU) backend of bitnet-mesh.
//
// No Metal kernels exist yet: calling Metal needs cgo (or an Objective-C
// bridge), and the kernels are pure Go. Probe reports what a node could offer,
// honestly: on Apple Silicon it names the GPU and says Metal is not available
// because the kernels are not built; elsewhere it says Metal requires macOS.
// Inference nodes include the result in their hardware report.
package metal

// Reasons Probe gives for Available = false.
const (
	ReasonNotBuilt  = "metal kernels not built in this release"
	ReasonNotMacOS  = "metal requires macOS"
	ReasonNoAppleSi = "metal backend needs an Apple Silicon GPU"
)

// Info is the result of Probe.
type Info struct {
	// Available reports whether the Metal kernels can run here (never, yet).
	Available bool `json:"available"`
	// Reason says why Available is false.
	Reason string `json:"reason,omitempty"`
	// Device names the GPU found, if any (e.g. "Apple M2 Pro GPU").
	Device string `json:"device,omitempty"`
}

// Probe reports whether this machine has a GPU the Metal backend could use.
// It never fails: anything it cannot determine is reported as unavailable.
func Probe() Info { return probe() }

// fromSysctl builds the darwin answer from the sysctls hw.optional.arm64
// (1 on Apple Silicon) and machdep.cpu.brand_string; split out so that every
// platform tests it.
func fromSysctl(arm64 uint32, arm64Err error, brand string) Info {
	if arm64Err != nil || arm64 != 1 {
		return Info{Reason: ReasonNoAppleSi}
	}
	dev := "Apple Silicon GPU"
	if brand != "" {
		dev = brand + " GPU"
	}
	return Info{Reason: ReasonNotBuilt, Device: dev}
}
