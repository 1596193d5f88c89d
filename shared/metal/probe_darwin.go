//go:build darwin

package metal

import "golang.org/x/sys/unix"

// probe reads the sysctls that identify Apple Silicon. Under Rosetta, an
// amd64 binary also sees hw.optional.arm64 = 1, which is what we want: the
// GPU is there.
func probe() Info {
	v, err := unix.SysctlUint32("hw.optional.arm64")
	brand, _ := unix.Sysctl("machdep.cpu.brand_string")
	return fromSysctl(v, err, brand)
}
