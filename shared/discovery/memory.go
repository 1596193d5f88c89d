package discovery

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"
)

// Memory is an in-process Registry for a mesh that runs in one process
// (`bitnet up`). It runs the same gRPC health checks as Consul, from one
// goroutine per checked instance; Close stops them.
type Memory struct {
	mu       sync.Mutex
	entries  map[string]*memEntry
	watchers map[string]map[*memWatcher]struct{} // by service
	checks   sync.WaitGroup                      // health check goroutines
	closed   bool
}

type memEntry struct {
	inst   Instance
	cancel context.CancelFunc // stops the check goroutine; nil without a check
}

type memWatcher struct {
	out    *latest
	closed bool
}

// NewMemory returns an empty in-process registry.
func NewMemory() *Memory {
	return &Memory{entries: map[string]*memEntry{}, watchers: map[string]map[*memWatcher]struct{}{}}
}

var errClosed = errors.New("discovery: registry closed")

// Register adds or replaces inst. With a health check the instance is
// unhealthy until its first check passes.
func (m *Memory) Register(ctx context.Context, inst Instance, opts ...RegisterOption) error {
	cfg := newRegisterConfig(opts)
	if err := validateInstance(inst, cfg); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("discovery: register %q: %w", inst.ID, err)
	}
	inst = inst.clone()
	inst.Healthy = cfg.noCheck
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	if old := m.entries[inst.ID]; old != nil {
		m.removeLocked(old)
	}
	e := &memEntry{inst: inst}
	m.entries[inst.ID] = e
	if !cfg.noCheck {
		cctx, cancel := context.WithCancel(context.Background())
		e.cancel = cancel
		m.checks.Add(1)
		target := inst.HostPort() // read here: e.inst changes under m.mu later
		go func() {
			defer m.checks.Done()
			m.runChecks(cctx, e, target, cfg)
		}()
	}
	m.notifyLocked(inst.Service)
	return nil
}

// runChecks checks e every interval until cancelled or e has been failing
// for deregisterAfter, when it removes e.
func (m *Memory) runChecks(ctx context.Context, e *memEntry, target string, cfg registerConfig) {
	failingSince := time.Now() // unhealthy from the start, like Consul's critical
	t := time.NewTicker(cfg.interval)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, cfg.timeout)
		err := checkGRPC(cctx, target, cfg.healthService, cfg.tls)
		cancel()
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		if err == nil {
			failingSince = time.Time{}
		} else if failingSince.IsZero() {
			failingSince = now
		}
		m.mu.Lock()
		if m.entries[e.inst.ID] != e { // replaced or removed meanwhile
			m.mu.Unlock()
			return
		}
		if err != nil && now.Sub(failingSince) >= cfg.deregisterAfter {
			delete(m.entries, e.inst.ID)
			m.notifyLocked(e.inst.Service)
			m.mu.Unlock()
			return
		}
		if e.inst.Healthy != (err == nil) {
			e.inst.Healthy = err == nil
			m.notifyLocked(e.inst.Service)
		}
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// UpdateMeta replaces the Meta of instance id.
func (m *Memory) UpdateMeta(ctx context.Context, id string, meta map[string]string) error {
	if err := validateMeta(meta); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("discovery: update meta of %q: %w", id, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[id]
	if e == nil {
		return fmt.Errorf("discovery: update meta of %q: %w", id, ErrNotFound)
	}
	e.inst.Meta = maps.Clone(meta)
	m.notifyLocked(e.inst.Service)
	return nil
}

// Deregister removes instance id.
func (m *Memory) Deregister(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("discovery: deregister %q: %w", id, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.entries[id]; e != nil {
		m.removeLocked(e)
		m.notifyLocked(e.inst.Service)
	}
	return nil
}

func (m *Memory) removeLocked(e *memEntry) {
	delete(m.entries, e.inst.ID)
	if e.cancel != nil {
		e.cancel()
	}
}

// Instances returns every instance of service.
func (m *Memory) Instances(ctx context.Context, service string) ([]Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("discovery: instances of %q: %w", service, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.listLocked(service, false), nil
}

func (m *Memory) listLocked(service string, healthyOnly bool) []Instance {
	list := []Instance{}
	for _, e := range m.entries {
		if e.inst.Service == service && (!healthyOnly || e.inst.Healthy) {
			list = append(list, e.inst.clone())
		}
	}
	sortByID(list)
	return list
}

// Watch streams the healthy instances of service.
func (m *Memory) Watch(ctx context.Context, service string) (<-chan []Instance, error) {
	if service == "" {
		return nil, errors.New("discovery: watch: empty service name")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("discovery: watch %q: %w", service, err)
	}
	w := &memWatcher{out: newLatest()}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, errClosed
	}
	if m.watchers[service] == nil {
		m.watchers[service] = map[*memWatcher]struct{}{}
	}
	m.watchers[service][w] = struct{}{}
	w.out.offer(m.listLocked(service, true))
	m.mu.Unlock()

	go func() { // ends with ctx, which the caller owns
		<-ctx.Done()
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.watchers[service], w)
		if !w.closed {
			w.closed = true
			close(w.out.ch)
		}
	}()
	return w.out.ch, nil
}

func (m *Memory) notifyLocked(service string) {
	ws := m.watchers[service]
	if len(ws) == 0 {
		return
	}
	list := m.listLocked(service, true)
	for w := range ws {
		if !w.closed {
			w.out.offer(list)
		}
	}
}

// Close stops every health check (waiting for them) and closes every watch
// channel. Registrations and watches after Close fail.
func (m *Memory) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	for _, e := range m.entries {
		if e.cancel != nil {
			e.cancel()
		}
	}
	for _, ws := range m.watchers {
		for w := range ws {
			if !w.closed {
				w.closed = true
				close(w.out.ch)
			}
		}
	}
	m.mu.Unlock()
	m.checks.Wait()
	return nil
}
