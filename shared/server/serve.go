package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Serve serves gRPC and HTTP until ctx is done, then shuts down gracefully
// (see the package doc) and returns nil; it returns an error when a listener
// fails first. A Server serves once.
func (s *Server) Serve(ctx context.Context) error {
	s.serveMu.Lock()
	if s.served {
		s.serveMu.Unlock()
		return errors.New("server: Serve called after Serve or Close")
	}
	s.served = true
	s.serveMu.Unlock()

	errc := make(chan error, 4)
	go func() {
		// ErrServerStopped: ctx was done before Serve started.
		if err := s.grpc.Serve(s.grpcLis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			errc <- fmt.Errorf("server: gRPC on %s: %w", s.grpcLis.Addr(), err)
			return
		}
		errc <- nil
	}()
	running := 1
	if s.gwLis != nil {
		running++
		go func() {
			if err := s.grpc.Serve(s.gwLis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				errc <- fmt.Errorf("server: gRPC for the gateway: %w", err)
				return
			}
			errc <- nil
		}()
	}
	if s.http != nil {
		running++
		go func() {
			var err error
			if s.http.TLSConfig != nil {
				err = s.http.ServeTLS(s.httpLis, "", "") // certificates come from TLSConfig
			} else {
				err = s.http.Serve(s.httpLis)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("server: HTTP on %s: %w", s.httpLis.Addr(), err)
				return
			}
			errc <- nil
		}()
	}
	if s.metricsSrv != nil {
		running++
		go func() {
			if err := s.metricsSrv.Serve(s.metricsLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("server: metrics on %s: %w", s.metricsLis.Addr(), err)
				return
			}
			errc <- nil
		}()
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.ready.Store(true)
	fields := []zap.Field{zap.Stringer("grpc_addr", s.grpcLis.Addr())}
	if s.httpLis != nil {
		fields = append(fields, zap.Stringer("http_addr", s.httpLis.Addr()))
	}
	if s.metricsLis != nil {
		fields = append(fields, zap.Stringer("metrics_addr", s.metricsLis.Addr()))
	}
	fields = append(fields, zap.Bool("tls", s.cfg.tls != nil))
	s.log.Info("server serving", fields...)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		running--
		// gRPC's Serve returns nil only after Stop; HTTP's never returns
		// nil unprompted. Either way, tear down the rest.
		if serveErr == nil {
			serveErr = errors.New("server: a listener stopped unexpectedly")
		}
	}
	s.shutdown()
	for ; running > 0; running-- {
		if err := <-errc; err != nil && serveErr == nil {
			serveErr = err
		}
	}
	if s.conn != nil {
		_ = s.conn.Close()
	}
	if ctx.Err() != nil && serveErr == nil {
		s.log.Info("server stopped")
		return nil
	}
	return serveErr
}

// shutdown: NOT_SERVING, drain, then graceful stops bounded by the
// shutdown timeout.
func (s *Server) shutdown() {
	s.ready.Store(false)
	s.health.Shutdown() // every service NOT_SERVING; later sets are ignored
	s.log.Info("server draining", zap.Duration("drain", s.cfg.drain))
	if len(s.cfg.onShutdown) > 0 {
		hctx, cancel := context.WithTimeout(context.Background(), s.cfg.drain+s.cfg.shutdown)
		for _, fn := range s.cfg.onShutdown {
			fn(hctx)
		}
		cancel()
	}
	if s.cfg.drain > 0 {
		time.Sleep(s.cfg.drain)
	}

	deadline := time.Now().Add(s.cfg.shutdown)
	done := make(chan struct{})
	go func() {
		defer close(done)
		hctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		for _, hs := range []*http.Server{s.http, s.metricsSrv} {
			if hs == nil {
				continue
			}
			if err := hs.Shutdown(hctx); err != nil {
				s.log.Warn("http shutdown cut requests", zap.Error(err))
				_ = hs.Close()
			}
		}
	}()

	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		s.grpc.GracefulStop()
	}()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		s.log.Warn("grpc graceful stop timed out, stopping", zap.Duration("timeout", s.cfg.shutdown))
		s.grpc.Stop()
		<-stopped
	}
	<-done
}
