package discovery

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"
)

// Consul is a Registry backed by a Consul agent's HTTP API. Instances are
// registered with the local agent, which runs their gRPC health checks;
// Watch uses blocking queries on the health endpoint.
type Consul struct {
	client     *api.Client
	log        *zap.Logger
	wait       time.Duration
	minBackoff time.Duration
	maxBackoff time.Duration

	mu   sync.Mutex
	regs map[string]*api.AgentServiceRegistration // what this process registered, for UpdateMeta
}

type consulConfig struct {
	token, datacenter      string
	log                    *zap.Logger
	wait                   time.Duration
	minBackoff, maxBackoff time.Duration
}

// ConsulOption configures NewConsul.
type ConsulOption func(*consulConfig)

// WithToken sets the ACL token.
func WithToken(token string) ConsulOption { return func(c *consulConfig) { c.token = token } }

// WithDatacenter sets the datacenter for queries (default the agent's).
func WithDatacenter(dc string) ConsulOption { return func(c *consulConfig) { c.datacenter = dc } }

// WithLogger sets the logger for watch errors (default no-op).
func WithLogger(l *zap.Logger) ConsulOption { return func(c *consulConfig) { c.log = l } }

// WithWatchWait sets how long one blocking query may wait (default 1 min).
func WithWatchWait(d time.Duration) ConsulOption { return func(c *consulConfig) { c.wait = d } }

// WithRetryBackoff sets the backoff between failed watch queries
// (default 100 ms doubling to 5 s).
func WithRetryBackoff(minimum, maximum time.Duration) ConsulOption {
	return func(c *consulConfig) { c.minBackoff, c.maxBackoff = minimum, maximum }
}

// NewConsul returns a Registry using the agent at addr ("127.0.0.1:8500",
// or a URL such as "http://host:8500"). It does not contact the agent.
func NewConsul(addr string, opts ...ConsulOption) (*Consul, error) {
	cfg := consulConfig{wait: time.Minute, minBackoff: 100 * time.Millisecond, maxBackoff: 5 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if addr == "" {
		return nil, errors.New("discovery: empty Consul address")
	}
	if cfg.wait <= 0 || cfg.minBackoff <= 0 || cfg.maxBackoff < cfg.minBackoff {
		return nil, fmt.Errorf("discovery: watch wait %v, backoff %v-%v: want positive, min <= max",
			cfg.wait, cfg.minBackoff, cfg.maxBackoff)
	}
	if cfg.log == nil {
		cfg.log = zap.NewNop()
	}
	ac := api.DefaultConfig() // also reads CONSUL_HTTP_TOKEN and TLS settings from the environment
	ac.Address = addr
	if cfg.token != "" {
		ac.Token = cfg.token
	}
	if cfg.datacenter != "" {
		ac.Datacenter = cfg.datacenter
	}
	client, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("discovery: Consul client for %s: %w", addr, err)
	}
	return &Consul{
		client: client, log: cfg.log, wait: cfg.wait, minBackoff: cfg.minBackoff, maxBackoff: cfg.maxBackoff,
		regs: map[string]*api.AgentServiceRegistration{},
	}, nil
}

// Client returns the underlying Consul client (for KV and other APIs).
func (c *Consul) Client() *api.Client { return c.client }

// Register registers inst with the agent and a GRPC check of its address.
func (c *Consul) Register(ctx context.Context, inst Instance, opts ...RegisterOption) error {
	cfg := newRegisterConfig(opts)
	if err := validateInstance(inst, cfg); err != nil {
		return err
	}
	reg := &api.AgentServiceRegistration{
		ID:      inst.ID,
		Name:    inst.Service,
		Address: inst.Address,
		Port:    inst.Port,
		Tags:    slices.Clone(inst.Tags),
		Meta:    maps.Clone(inst.Meta),
	}
	if !cfg.noCheck {
		target := inst.HostPort()
		if cfg.healthService != "" {
			target += "/" + cfg.healthService
		}
		reg.Check = &api.AgentServiceCheck{
			CheckID:                        "service:" + inst.ID,
			Name:                           "gRPC health " + target,
			GRPC:                           target,
			Interval:                       cfg.interval.String(),
			Timeout:                        cfg.timeout.String(),
			DeregisterCriticalServiceAfter: cfg.deregisterAfter.String(),
		}
		if cfg.tls != nil {
			reg.Check.GRPCUseTLS = true
			reg.Check.TLSServerName = cfg.tls.ServerName
			reg.Check.TLSSkipVerify = true
		}
	}
	if err := c.register(ctx, reg); err != nil {
		return fmt.Errorf("discovery: register %q (%s) with Consul: %w", inst.ID, inst.Service, err)
	}
	c.mu.Lock()
	c.regs[inst.ID] = reg
	c.mu.Unlock()
	return nil
}

func (c *Consul) register(ctx context.Context, reg *api.AgentServiceRegistration) error {
	return c.client.Agent().ServiceRegisterOpts(reg, api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx))
}

// UpdateMeta re-registers instance id (registered through this Consul value)
// with meta. The agent keeps the check's current status.
func (c *Consul) UpdateMeta(ctx context.Context, id string, meta map[string]string) error {
	if err := validateMeta(meta); err != nil {
		return err
	}
	c.mu.Lock()
	old := c.regs[id]
	c.mu.Unlock()
	if old == nil {
		return fmt.Errorf("discovery: update meta of %q: %w", id, ErrNotFound)
	}
	reg := *old
	reg.Meta = maps.Clone(meta)
	if err := c.register(ctx, &reg); err != nil {
		return fmt.Errorf("discovery: update meta of %q in Consul: %w", id, err)
	}
	c.mu.Lock()
	if c.regs[id] == old {
		c.regs[id] = &reg
	}
	c.mu.Unlock()
	return nil
}

// Deregister removes instance id from the agent.
func (c *Consul) Deregister(ctx context.Context, id string) error {
	c.mu.Lock()
	delete(c.regs, id)
	c.mu.Unlock()
	err := c.client.Agent().ServiceDeregisterOpts(id, (&api.QueryOptions{}).WithContext(ctx))
	var se api.StatusError
	if errors.As(err, &se) && se.Code == 404 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("discovery: deregister %q from Consul: %w", id, err)
	}
	return nil
}

// Instances returns every instance of service in the catalog.
func (c *Consul) Instances(ctx context.Context, service string) ([]Instance, error) {
	entries, _, err := c.client.Health().Service(service, "", false, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("discovery: instances of %q from Consul: %w", service, err)
	}
	return toInstances(entries), nil
}

func toInstances(entries []*api.ServiceEntry) []Instance {
	list := make([]Instance, 0, len(entries))
	for _, e := range entries {
		s := e.Service
		addr := s.Address
		if addr == "" && e.Node != nil {
			addr = e.Node.Address
		}
		list = append(list, Instance{
			ID: s.ID, Service: s.Service, Address: addr, Port: s.Port,
			Meta: maps.Clone(s.Meta), Tags: slices.Clone(s.Tags),
			Healthy: e.Checks.AggregatedStatus() == api.HealthPassing,
		})
	}
	sortByID(list)
	return list
}

// Watch streams the passing instances of service, from blocking queries.
// Errors are logged and retried with backoff; the channel closes when ctx is
// done.
func (c *Consul) Watch(ctx context.Context, service string) (<-chan []Instance, error) {
	if service == "" {
		return nil, errors.New("discovery: watch: empty service name")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("discovery: watch %q: %w", service, err)
	}
	out := newLatest()
	go func() { // owned by ctx
		defer close(out.ch)
		c.watch(ctx, service, out)
	}()
	return out.ch, nil
}

func (c *Consul) watch(ctx context.Context, service string, out *latest) {
	var index uint64
	backoff := c.minBackoff
	for ctx.Err() == nil {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: c.wait}).WithContext(ctx)
		entries, meta, err := c.client.Health().Service(service, "", true, q)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.log.Warn("consul watch failed", zap.String("service", service), zap.Duration("retry_in", backoff), zap.Error(err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, c.maxBackoff)
			continue
		}
		backoff = c.minBackoff
		// Consul's rules for blocking queries: an index that goes backwards
		// (agent restart, snapshot restore) restarts from 0; never reuse 0.
		switch {
		case meta.LastIndex < index:
			index = 0
		default:
			index = max(meta.LastIndex, 1)
		}
		out.offer(toInstances(entries))
	}
}
