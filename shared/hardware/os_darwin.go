package hardware

import "golang.org/x/sys/unix"

func totalMemory() uint64 {
	n, err := unix.SysctlUint64("hw.memsize")
	if err != nil {
		return 0
	}
	return n
}

// osCaches reads the caches of the performance cores on Apple Silicon
// (hw.perflevel0.*), else the classic names.
func osCaches() (l1d, l2, l3 int64) {
	get := func(names ...string) int64 {
		for _, n := range names {
			if v, err := unix.SysctlUint64(n); err == nil && v > 0 && v < 1<<62 {
				return int64(v)
			}
		}
		return 0
	}
	return get("hw.perflevel0.l1dcachesize", "hw.l1dcachesize"),
		get("hw.perflevel0.l2cachesize", "hw.l2cachesize"),
		get("hw.perflevel0.l3cachesize", "hw.l3cachesize")
}

func osBrand() string {
	s, _ := unix.Sysctl("machdep.cpu.brand_string")
	return s
}
