package jobs

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/bitnet-mesh/bitnet-mesh/shared/hardware"
)

// Defaults of Config.
const (
	DefaultWorkers   = 1 // a job uses every core already
	DefaultQueueSize = 16
	DefaultMaxJobs   = 1000
)

// Config is what every job service is configured with; each service
// embeds it in its options, beside its own settings, and its functional
// options set it.
type Config struct {
	Workers   int    // jobs run at once, 1 to 64
	QueueSize int    // queued (not yet running) jobs; Create fails with ErrQueueFull beyond
	MaxJobs   int    // finished jobs kept; the oldest are forgotten first
	WorkDir   string // where the service keeps its work files
	// MemoryBudget bounds the memory one job may need (0: half the
	// machine's memory; negative: no check).
	MemoryBudget int64
	// Retention forgets finished jobs that ended longer ago (0: kept until
	// MaxJobs pushes them out).
	Retention time.Duration
	Clock     func() time.Time
	Log       *zap.Logger
}

// DefaultConfig returns the defaults above, the wall clock and no logging.
func DefaultConfig() Config {
	return Config{Workers: DefaultWorkers, QueueSize: DefaultQueueSize, MaxJobs: DefaultMaxJobs, Clock: time.Now, Log: zap.NewNop()}
}

// Check validates c for the named service ("quantizer") and fills in the
// defaults of the memory budget, the clock and the logger.
func (c *Config) Check(service string) error {
	switch {
	case c.Workers < 1 || c.Workers > 64:
		return fmt.Errorf("%s: %d workers, want 1 to 64: %w", service, c.Workers, ErrInvalid)
	case c.QueueSize < 1:
		return fmt.Errorf("%s: queue size %d, want at least 1: %w", service, c.QueueSize, ErrInvalid)
	case c.MaxJobs < 1:
		return fmt.Errorf("%s: max jobs %d, want at least 1: %w", service, c.MaxJobs, ErrInvalid)
	case c.Retention < 0:
		return fmt.Errorf("%s: retention %v, want 0 (keep) or more: %w", service, c.Retention, ErrInvalid)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	if c.MemoryBudget == 0 {
		if hw, err := hardware.Detect(); err == nil {
			c.MemoryBudget = int64(hw.MemoryBytes / 2)
		}
	}
	return nil
}

// ExpireInterval is how often a service with retention r looks for
// expired jobs: a tenth of r, between a second and a minute.
func ExpireInterval(r time.Duration) time.Duration { return min(max(r/10, time.Second), time.Minute) }
