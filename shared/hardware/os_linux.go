package hardware

import (
	"os"

	"golang.org/x/sys/unix"
)

func totalMemory() uint64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(max(si.Unit, 1))
}

func osCaches() (l1d, l2, l3 int64) {
	return sysfsCaches(os.DirFS("/sys/devices/system/cpu/cpu0/cache"))
}

func osBrand() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	return cpuinfoBrand(string(b))
}
