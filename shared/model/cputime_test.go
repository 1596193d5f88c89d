//go:build unix

package model

import (
	"syscall"
	"time"
)

// cpuClock measures the process's CPU time (user + system), a steadier
// yardstick than wall time on a shared machine.
type cpuClock struct{ start time.Duration }

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock { return cpuClock{processCPU()} }

func (c cpuClock) seconds() float64 { return (processCPU() - c.start).Seconds() }
