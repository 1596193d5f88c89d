//go:build !linux && !darwin && !windows

package hardware

func totalMemory() uint64           { return 0 }
func osCaches() (l1d, l2, l3 int64) { return 0, 0, 0 }
func osBrand() string               { return "" }
