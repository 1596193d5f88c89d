package mesh

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/bitnet-mesh/bitnet-mesh/proto/openapi"
	"github.com/bitnet-mesh/bitnet-mesh/services/console"
	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
	"github.com/bitnet-mesh/bitnet-mesh/shared/auth"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
	"github.com/bitnet-mesh/bitnet-mesh/shared/server"
)

// Service is one or more mesh services on one shared/server instance, built
// and listening, ready to Serve. Each service is a discovery instance of its
// own (ID() names them).
type Service struct {
	cfg     Config
	srv     *server.Server
	insts   []discovery.Instance
	closers []func() error                // released after Serve, last first
	starts  []func(context.Context) error // run before serving (router watch)
	runs    []func(context.Context)       // goroutines while serving (meta publishing)
	parts   map[Kind]*part

	stopRuns context.CancelFunc // set by Serve: stops runs before deregistering
	runsDone sync.WaitGroup
	mu       sync.Mutex

	keys      *auth.Table // nil: API keys off
	guard     *auth.Guard
	sec       security
	checkOpts []discovery.RegisterOption // health checks over TLS
}

// part is what one Kind adds to a Service.
type part struct {
	kind    Kind
	id      string
	opts    []server.Option
	closers []func() error
	start   func(context.Context) error
	run     func(context.Context)
	meta    func() map[string]string // initial discovery Meta; nil = none
	ready   server.ReadyFunc
	extra   any // *inference.Server, *router.Router, *registry.Store

	adminKeyFile string // registry: the admin key file created at this start
}

// Build makes the service kind from cfg: it binds the listeners and builds
// the service, but registers nothing until Serve.
func Build(kind Kind, cfg Config) (*Service, error) {
	if _, err := ParseKind(string(kind)); err != nil {
		return nil, fmt.Errorf("mesh: %w", err)
	}
	return build(cfg, []Kind{kind})
}

func build(cfg Config, kinds []Kind) (_ *Service, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		for _, l := range []net.Listener{cfg.GRPCListener, cfg.HTTPListener} {
			if l != nil {
				_ = l.Close()
			}
		}
		return nil, err
	}
	lis := cfg.GRPCListener
	if lis == nil {
		if lis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
			return nil, fmt.Errorf("mesh: listen gRPC on %s: %w", cfg.GRPCAddr, err)
		}
	}
	s := &Service{cfg: cfg, parts: map[Kind]*part{}, keys: cfg.keys}
	defer func() {
		if err != nil {
			_ = lis.Close()
			if cfg.HTTPListener != nil {
				_ = cfg.HTTPListener.Close()
			}
			s.release()
		}
	}()
	host, port, err := advertised(lis.Addr(), cfg.Advertise)
	if err != nil {
		return nil, err
	}
	if err := cfg.checkExposure(lis.Addr()); err != nil {
		return nil, err
	}
	sec, err := newSecurity(cfg)
	if err != nil {
		return nil, err
	}
	s.sec = sec
	opts := []server.Option{
		server.WithGRPCListener(lis),
		server.WithLogger(cfg.Logger),
		server.WithMetrics(cfg.Metrics),
		server.WithTracing(cfg.Tracing),
		server.WithDrainTimeout(cfg.DrainTimeout),
		server.WithShutdownTimeout(cfg.ShutdownTimeout),
		server.WithShutdownHook(s.leave),
		server.WithHTTPHandler("GET /openapi/", http.StripPrefix("/openapi", openapi.Handler())),
		server.WithLimits(cfg.Limits),
		server.WithCORS(cfg.CORSOrigins...),
	}
	if slices.Contains(kinds, Router) && !cfg.NoConsole {
		c, err := console.New()
		if err != nil {
			return nil, fmt.Errorf("mesh: %w", err)
		}
		opts = append(opts, c.ServerOptions()...)
	}
	switch {
	case cfg.HTTPListener != nil:
		opts = append(opts, server.WithHTTPListener(cfg.HTTPListener))
	case cfg.HTTPAddr == "-":
		opts = append(opts, server.WithHTTPAddr(""))
	default:
		opts = append(opts, server.WithHTTPAddr(cfg.HTTPAddr))
	}
	for _, k := range kinds {
		id := cfg.NodeName
		if id == "" {
			id = string(k) + "-" + host + "-" + strconv.Itoa(port)
		} else if len(kinds) > 1 {
			id += "-" + string(k)
		}
		p, err := s.newPart(k, sec, id, net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return nil, err
		}
		s.parts[k] = p
		s.closers = append(s.closers, p.closers...)
		opts = append(opts, p.opts...)
		if p.ready != nil {
			opts = append(opts, server.WithReadiness(p.ready))
		}
		if p.start != nil {
			s.starts = append(s.starts, p.start)
		}
		if p.run != nil {
			s.runs = append(s.runs, p.run)
		}
		inst := discovery.Instance{ID: id, Service: k.ServiceName(), Address: host, Port: port, Tags: []string{string(k)}}
		if p.meta != nil {
			inst.Meta = p.meta()
		}
		s.insts = append(s.insts, inst)
	}
	gopts, err := s.secure(sec, lis.Addr())
	if err != nil {
		return nil, err
	}
	opts = append(opts, gopts...)
	if s.srv, err = server.New(opts...); err != nil {
		return nil, fmt.Errorf("mesh: %w", err)
	}
	if err := cfg.checkExposure(s.srv.HTTPAddr()); err != nil {
		_ = s.srv.Close()
		return nil, err
	}
	return s, nil
}

// secure sets up the Service's key table (its own, reading the registry in
// process or over gRPC, unless Config shares one) and Guard, and returns
// the server options installing them.
func (s *Service) secure(sec security, addr net.Addr) ([]server.Option, error) {
	cfg := s.cfg
	if cfg.Auth && s.keys == nil {
		var src auth.Source
		if reg := s.parts[Registry]; reg != nil {
			src = reg.extra.(*registry.Store)
		} else {
			if cfg.APIKey == "" && cfg.TLS.Cert == "" {
				return nil, fmt.Errorf("mesh: --auth needs a way to read the registry's keys: " +
					"--api-key (a key with scope read) or --tls-cert/--tls-key (a mesh certificate, with mTLS on the registry)")
			}
			conn := newRegConn(cfg.RegistryAddr, cfg.Discovery, cfg.registryOptions(sec))
			s.closers = append(s.closers, conn.Close)
			src = remoteKeys{conn}
		}
		t, err := auth.NewTable(src, auth.WithRefresh(cfg.KeyRefresh), auth.WithMaxStale(cfg.KeyMaxStale),
			auth.WithTableLogger(cfg.Logger.Named("keys")))
		if err != nil {
			return nil, fmt.Errorf("mesh: %w", err)
		}
		s.keys = t
		// The first sync before registering (the registry may be down: then
		// keyed calls get UNAVAILABLE until Run's next sync succeeds).
		s.starts = append(s.starts, func(ctx context.Context) error {
			if err := t.Sync(ctx); err != nil {
				cfg.Logger.Warn("key table: first sync failed; retrying", zap.Error(err))
			}
			return nil
		})
		s.runs = append(s.runs, t.Run)
	}
	switch {
	case cfg.quiet:
	case !cfg.Auth && !cfg.mTLS():
		cfg.Logger.Warn("API keys are off: every caller that can reach the listeners may call every RPC (use --auth)")
	case sec.serverTLS == nil && !loopback(addr):
		cfg.Logger.Warn("serving without TLS: API keys travel in plaintext (use --tls-cert and --tls-key off loopback)")
	}
	if sec.serverTLS != nil {
		check := sec.clientTLS
		if check == nil {
			check = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		s.checkOpts = append(s.checkOpts, discovery.WithCheckTLS(check))
	}
	var keys *auth.Table
	if cfg.Auth {
		keys = s.keys
	}
	opts, g, err := cfg.guard(keys, sec)
	if err != nil {
		return nil, err
	}
	s.guard = g
	return opts, nil
}

// keysChanged refreshes the key table before the key call returns (a key
// was created or revoked by this process's registry: a revoked key is
// refused here, and by `up`'s node, from the next call on).
func (s *Service) keysChanged() {
	s.mu.Lock()
	t := s.keys
	s.mu.Unlock()
	if t == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.Sync(ctx); err != nil {
		t.Kick() // Run retries
	}
}

// Keys is the Service's key table (nil with API keys off); Up shares it
// with its inference node.
func (s *Service) Keys() *auth.Table { return s.keys }

// Guard is the Service's access control, for HTTP routes added outside
// the gateway (Guard().Handler).
func (s *Service) Guard() *auth.Guard { return s.guard }

// AdminKeyFile is the file holding the admin key this start created (a
// registry with Auth and no keys before), or "".
func (s *Service) AdminKeyFile() string {
	if p := s.parts[Registry]; p != nil {
		return p.adminKeyFile
	}
	return ""
}

func (s *Service) newPart(k Kind, sec security, id, addr string) (*part, error) {
	switch k {
	case Registry:
		return registryPart(s.cfg, id, s.keysChanged)
	case Quantizer:
		return quantizerPart(s.cfg, sec, id, s.parts[Registry])
	case Inference:
		return inferencePart(s.cfg, sec, id, addr)
	case Router:
		return routerPart(s.cfg, sec, id, s.parts[Registry])
	case Trainer:
		return trainerPart(s.cfg, sec, id, s.parts[Registry])
	}
	return nil, fmt.Errorf("mesh: unknown service %q", k)
}

// advertised returns the host and port other services dial.
func advertised(a net.Addr, host string) (string, int, error) {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return "", 0, fmt.Errorf("mesh: listener address %v is not TCP", a)
	}
	if host == "" {
		host = tcp.IP.String()
		if tcp.IP == nil || tcp.IP.IsUnspecified() {
			host = "127.0.0.1"
		}
	}
	return host, tcp.Port, nil
}

// Addr is the bound gRPC address.
func (s *Service) Addr() net.Addr { return s.srv.Addr() }

// HTTPAddr is the bound REST address (nil when disabled).
func (s *Service) HTTPAddr() net.Addr { return s.srv.HTTPAddr() }

// Instances are the discovery registrations Serve makes (Meta as at Build).
func (s *Service) Instances() []discovery.Instance {
	return append([]discovery.Instance(nil), s.insts...)
}

// Server is the underlying shared/server instance.
func (s *Service) Server() *server.Server { return s.srv }

// Ready reports whether every part can take traffic (the router: a node is
// known).
func (s *Service) Ready(ctx context.Context) error {
	for _, p := range s.parts {
		if p.ready != nil {
			if err := p.ready(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// Serve starts the parts (the router's watch), registers every instance in
// discovery, serves until ctx is done, then shuts down: deregistration
// first (shared/server's shutdown hook, right after NOT_SERVING), drain,
// graceful stop, and finally the parts are closed. A Service serves once.
func (s *Service) Serve(ctx context.Context) error {
	defer s.release()
	log := s.cfg.Logger
	for _, st := range s.starts {
		if err := st(ctx); err != nil {
			_ = s.srv.Close()
			return fmt.Errorf("mesh: %w", err)
		}
	}
	ropts := append([]discovery.RegisterOption{
		discovery.WithCheckInterval(s.cfg.CheckInterval),
		discovery.WithDeregisterAfter(s.cfg.DeregisterAfter),
	}, s.checkOpts...)
	for i, inst := range s.insts {
		if err := s.cfg.Discovery.Register(ctx, inst, ropts...); err != nil {
			s.deregister(context.Background(), s.insts[:i])
			_ = s.srv.Close()
			return fmt.Errorf("mesh: register %s: %w", inst.ID, err)
		}
		log.Info("registered", zap.String("service", inst.Service), zap.String("id", inst.ID), zap.String("addr", inst.HostPort()))
	}
	rctx, stop := context.WithCancel(ctx)
	s.mu.Lock()
	s.stopRuns = stop
	s.mu.Unlock()
	for _, run := range s.runs {
		s.runsDone.Add(1)
		go func() {
			defer s.runsDone.Done()
			run(rctx)
		}()
	}
	err := s.srv.Serve(ctx)
	s.leave(context.Background()) // no-op after the hook; covers a failed listener
	return err
}

// leave stops meta publishing and deregisters every instance; it is the
// server's shutdown hook, so the router stops choosing the node before it
// stops taking requests.
func (s *Service) leave(ctx context.Context) {
	s.mu.Lock()
	stop := s.stopRuns
	s.stopRuns = nil
	s.mu.Unlock()
	if stop == nil {
		return
	}
	stop()
	s.runsDone.Wait() // no meta update can re-register after this
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s.deregister(dctx, s.insts)
}

func (s *Service) deregister(ctx context.Context, insts []discovery.Instance) {
	for _, inst := range insts {
		if err := s.cfg.Discovery.Deregister(ctx, inst.ID); err != nil {
			s.cfg.Logger.Warn("deregister failed", zap.String("id", inst.ID), zap.Error(err))
		}
	}
}

// Close releases a Service that will not Serve.
func (s *Service) Close() error {
	err := s.srv.Close()
	s.release()
	return err
}

// release closes the parts once, last first.
func (s *Service) release() {
	s.mu.Lock()
	cs := s.closers
	s.closers = nil
	s.mu.Unlock()
	var errs []error
	for i := len(cs) - 1; i >= 0; i-- {
		if err := cs[i](); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.cfg.Logger.Warn("closing services", zap.Error(err))
	}
}

var _ io.Closer = (*Service)(nil)
