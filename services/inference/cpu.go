package inference

import (
	"runtime/metrics"
	"sync"
	"time"
)

// cpuMeter measures the process's CPU use per second of wall time over about
// the last minute, from the Go runtime's CPU-time estimates (portable, no
// cgo). Safe for concurrent use.
type cpuMeter struct {
	mu         sync.Mutex
	base, prev cpuSample
}

type cpuSample struct {
	at  time.Time
	cpu float64 // busy CPU seconds
}

func readCPU() cpuSample {
	s := []metrics.Sample{{Name: "/cpu/classes/total:cpu-seconds"}, {Name: "/cpu/classes/idle:cpu-seconds"}}
	metrics.Read(s)
	var busy float64
	if s[0].Value.Kind() == metrics.KindFloat64 && s[1].Value.Kind() == metrics.KindFloat64 {
		busy = s[0].Value.Float64() - s[1].Value.Float64()
	}
	return cpuSample{at: time.Now(), cpu: busy}
}

// utilization returns busy cores (0 to GOMAXPROCS) since a baseline at most
// two minutes old; the baseline moves forward every minute.
func (m *cpuMeter) utilization() float64 {
	now := readCPU()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.base.at.IsZero() {
		m.base, m.prev = now, now
		return 0
	}
	if now.at.Sub(m.prev.at) >= time.Minute {
		m.base, m.prev = m.prev, now
	}
	dt := now.at.Sub(m.base.at).Seconds()
	if dt <= 0 {
		return 0
	}
	return max(now.cpu-m.base.cpu, 0) / dt
}
