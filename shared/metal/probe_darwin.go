//go:build darwin

package metal

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// probe reads the sysctls that identify Apple Silicon. Under Rosetta, an
// amd64 binary also sees hw.optional.arm64 = 1: the GPU is there, but this
// build has no backend for it.
func probe() Info {
	v, err := unix.SysctlUint32("hw.optional.arm64")
	brand, _ := unix.Sysctl("machdep.cpu.brand_string")
	return fromSysctl(v, err, brand, runtime.GOARCH == "arm64")
}
