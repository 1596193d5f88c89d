// Package discovery registers mesh services and watches which instances of a
// service are healthy. Two Registry implementations share one contract
// (tested against both): Consul (NewConsul), for a real deployment, and
// Memory (NewMemory), in-process, for `bitnet up`.
//
// A registered instance is health-checked through grpc.health.v1 at its
// address: it counts as healthy only once a check passes, leaves the healthy
// set when a check fails (server gone, or NOT_SERVING while it drains), and
// is removed after failing for the deregister-after time. Watch streams the
// healthy set on every change.
package discovery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Instance is one registered endpoint of a service.
type Instance struct {
	ID      string
	Service string
	Address string // host or IP that other nodes dial
	Port    int
	Meta    map[string]string
	Tags    []string
	// Healthy is set in results: true when the health check passes (or the
	// instance was registered WithoutHealthCheck).
	Healthy bool
}

// HostPort returns Address:Port.
func (i Instance) HostPort() string {
	return joinHostPort(i.Address, i.Port)
}

// Registry registers instances and reports the healthy ones.
type Registry interface {
	// Register adds or replaces inst (by ID) with a gRPC health check of
	// inst's address.
	Register(ctx context.Context, inst Instance, opts ...RegisterOption) error
	// UpdateMeta replaces the Meta of a registered instance; watchers see it.
	UpdateMeta(ctx context.Context, id string, meta map[string]string) error
	// Deregister removes an instance; removing an unknown ID is not an error.
	Deregister(ctx context.Context, id string) error
	// Watch sends the healthy instances of service (sorted by ID) at once and
	// then on every change, until ctx is done, when it closes the channel.
	// A slow reader gets only the latest set.
	Watch(ctx context.Context, service string) (<-chan []Instance, error)
	// Instances returns every registered instance of service, healthy or not,
	// sorted by ID, with Healthy set.
	Instances(ctx context.Context, service string) ([]Instance, error)
}

// ErrNotFound is returned (wrapped) for an instance ID that is not registered.
var ErrNotFound = errors.New("discovery: instance not registered")

// Defaults for the health check.
const (
	DefaultCheckInterval   = 5 * time.Second
	DefaultCheckTimeout    = 2 * time.Second
	DefaultDeregisterAfter = time.Minute
)

type registerConfig struct {
	interval, timeout, deregisterAfter time.Duration
	healthService                      string
	noCheck                            bool
	tls                                *tls.Config
}

func newRegisterConfig(opts []RegisterOption) registerConfig {
	c := registerConfig{interval: DefaultCheckInterval, timeout: DefaultCheckTimeout, deregisterAfter: DefaultDeregisterAfter}
	for _, o := range opts {
		o(&c)
	}
	if c.timeout > c.interval {
		c.timeout = c.interval
	}
	return c
}

// RegisterOption configures a registration's health check.
type RegisterOption func(*registerConfig)

// WithCheckInterval sets how often the health check runs (default 5 s).
func WithCheckInterval(d time.Duration) RegisterOption {
	return func(c *registerConfig) { c.interval = d }
}

// WithCheckTimeout bounds one check (default 2 s, at most the interval).
func WithCheckTimeout(d time.Duration) RegisterOption {
	return func(c *registerConfig) { c.timeout = d }
}

// WithDeregisterAfter removes an instance whose check has failed this long
// (default 1 min; Consul may enforce its own minimum outside dev mode).
func WithDeregisterAfter(d time.Duration) RegisterOption {
	return func(c *registerConfig) { c.deregisterAfter = d }
}

// WithHealthService checks the named service's status in grpc.health.v1
// instead of the server's overall status ("").
func WithHealthService(name string) RegisterOption {
	return func(c *registerConfig) { c.healthService = name }
}

// WithCheckTLS runs the gRPC health check over TLS: Memory dials with cfg
// (verifying the server as cfg says); Consul's agent checks with
// GRPCUseTLS under cfg.ServerName and skips verification (the agent does
// not hold the mesh CA, and the check reads nothing but health). Servers
// requiring client certificates keep grpc.health.v1 open (see package
// auth), so the check needs none.
func WithCheckTLS(cfg *tls.Config) RegisterOption {
	return func(c *registerConfig) { c.tls = cfg }
}

// WithoutHealthCheck registers the instance without a check: it is healthy
// until deregistered (for instances without a gRPC server).
func WithoutHealthCheck() RegisterOption {
	return func(c *registerConfig) { c.noCheck = true }
}

// Consul's limits on service Meta, applied by both implementations so that
// they accept the same input.
const (
	maxMetaPairs    = 64
	maxMetaKeyLen   = 128
	maxMetaValueLen = 512
)

var metaKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func validateMeta(meta map[string]string) error {
	if len(meta) > maxMetaPairs {
		return fmt.Errorf("discovery: %d meta pairs, at most %d", len(meta), maxMetaPairs)
	}
	for k, v := range meta {
		if len(k) > maxMetaKeyLen || !metaKey.MatchString(k) {
			return fmt.Errorf("discovery: meta key %q: want 1-%d of [A-Za-z0-9_-]", k, maxMetaKeyLen)
		}
		if strings.HasPrefix(k, "consul-") {
			return fmt.Errorf("discovery: meta key %q: prefix consul- is reserved", k)
		}
		if len(v) > maxMetaValueLen {
			return fmt.Errorf("discovery: meta %q: value of %d bytes, at most %d", k, len(v), maxMetaValueLen)
		}
	}
	return nil
}

func validateInstance(inst Instance, c registerConfig) error {
	switch {
	case inst.ID == "":
		return errors.New("discovery: instance with empty ID")
	case inst.Service == "":
		return fmt.Errorf("discovery: instance %q: empty service name", inst.ID)
	case inst.Address == "":
		return fmt.Errorf("discovery: instance %q: empty address", inst.ID)
	case inst.Port < 1 || inst.Port > 65535:
		return fmt.Errorf("discovery: instance %q: port %d out of range 1-65535", inst.ID, inst.Port)
	case !c.noCheck && (c.interval <= 0 || c.timeout <= 0 || c.deregisterAfter <= 0):
		return fmt.Errorf("discovery: instance %q: check interval %v, timeout %v and deregister-after %v must be positive",
			inst.ID, c.interval, c.timeout, c.deregisterAfter)
	}
	return validateMeta(inst.Meta)
}

// clone returns a deep copy, so callers and registries share no maps.
func (i Instance) clone() Instance {
	i.Meta = maps.Clone(i.Meta)
	i.Tags = slices.Clone(i.Tags)
	return i
}

func sortByID(list []Instance) {
	slices.SortFunc(list, func(a, b Instance) int { return strings.Compare(a.ID, b.ID) })
}

func equalSets(a, b []Instance) bool {
	return slices.EqualFunc(a, b, func(x, y Instance) bool {
		return x.ID == y.ID && x.Service == y.Service && x.Address == y.Address && x.Port == y.Port &&
			x.Healthy == y.Healthy && maps.Equal(x.Meta, y.Meta) && slices.Equal(x.Tags, y.Tags)
	})
}

// latest is a channel that holds only the newest value: a send replaces a
// value the reader has not taken yet. One goroutine sends and closes.
type latest struct {
	ch   chan []Instance
	last []Instance
	sent bool
}

func newLatest() *latest { return &latest{ch: make(chan []Instance, 1)} }

// offer sends list unless it equals the last one sent.
func (l *latest) offer(list []Instance) {
	if l.sent && equalSets(l.last, list) {
		return
	}
	l.last, l.sent = list, true
	select {
	case <-l.ch:
	default:
	}
	out := make([]Instance, len(list))
	for i, inst := range list {
		out[i] = inst.clone()
	}
	l.ch <- out
}
