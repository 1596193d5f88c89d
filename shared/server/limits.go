package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// Limits bounds what one client can make a server spend, in the spirit of
// Envoy's and Go's own defaults; a zero field takes its default
// (DefaultLimits). REST bodies are checked as they are read, so a slow or
// oversized body is cut with 408 or 413 without the handler holding it.
type Limits struct {
	// MaxBodyBytes bounds a REST request body (default 4 MiB); larger
	// ones get 413 (at once when Content-Length says so).
	MaxBodyBytes int64
	// MaxUploadBodyBytes bounds the body of an upload route
	// (WithUploadRoute; default 1 GiB). Uploads resume by offset, so a
	// bigger blob goes up in several requests. An upload body is NDJSON:
	// no line may pass MaxLineBytes.
	MaxUploadBodyBytes int64
	// MaxLineBytes bounds one line of an NDJSON upload body (default
	// 8 MiB: a 4 MiB chunk in base64 with its JSON).
	MaxLineBytes int64
	// ReadHeaderTimeout bounds reading a request's headers (default 10 s).
	ReadHeaderTimeout time.Duration
	// BodyReadTimeout is the longest one read of a request body may wait
	// for bytes (default 10 s); once a body has waited that long in all,
	// it must also arrive at MinBodyRate bytes per second of waiting
	// (default 1 KiB/s). A body that trickles (one byte every few seconds)
	// is cut with 408; a large upload at any usable speed is not, and the
	// time the server itself takes between reads does not count.
	BodyReadTimeout time.Duration
	MinBodyRate     int64
	// IdleTimeout closes a keep-alive connection idle this long (default
	// 120 s).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers (default 64 KiB).
	MaxHeaderBytes int
	// GRPCMaxRecvBytes bounds one received gRPC message (default 8 MiB:
	// room for the registry's 4 MiB upload chunks).
	GRPCMaxRecvBytes int
	// MaxConcurrentStreams bounds the concurrent streams of one gRPC or
	// HTTP/2 connection (default 1024; a router multiplexes every request
	// it sends a node on one connection).
	MaxConcurrentStreams uint32
	// GRPCKeepaliveMinTime is the shortest interval between a client's
	// keepalive pings the server tolerates (default 10 s); a client that
	// pings more often is disconnected (GOAWAY "too_many_pings").
	GRPCKeepaliveMinTime time.Duration
	// GRPCMaxConnectionIdle closes a gRPC connection without RPCs for this
	// long (default 30 min).
	GRPCMaxConnectionIdle time.Duration
}

// DefaultLimits returns the limits a zero Limits field takes.
func DefaultLimits() Limits {
	return Limits{
		MaxBodyBytes:          4 << 20,
		MaxUploadBodyBytes:    1 << 30,
		MaxLineBytes:          8 << 20,
		ReadHeaderTimeout:     10 * time.Second,
		BodyReadTimeout:       10 * time.Second,
		MinBodyRate:           1 << 10,
		IdleTimeout:           120 * time.Second,
		MaxHeaderBytes:        64 << 10,
		GRPCMaxRecvBytes:      8 << 20,
		MaxConcurrentStreams:  1024,
		GRPCKeepaliveMinTime:  10 * time.Second,
		GRPCMaxConnectionIdle: 30 * time.Minute,
	}
}

// withDefaults fills the zero fields of l from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	set64 := func(v *int64, dv int64) {
		if *v == 0 {
			*v = dv
		}
	}
	setD := func(v *time.Duration, dv time.Duration) {
		if *v == 0 {
			*v = dv
		}
	}
	set64(&l.MaxBodyBytes, d.MaxBodyBytes)
	set64(&l.MaxUploadBodyBytes, d.MaxUploadBodyBytes)
	set64(&l.MaxLineBytes, d.MaxLineBytes)
	set64(&l.MinBodyRate, d.MinBodyRate)
	setD(&l.ReadHeaderTimeout, d.ReadHeaderTimeout)
	setD(&l.BodyReadTimeout, d.BodyReadTimeout)
	setD(&l.IdleTimeout, d.IdleTimeout)
	setD(&l.GRPCKeepaliveMinTime, d.GRPCKeepaliveMinTime)
	setD(&l.GRPCMaxConnectionIdle, d.GRPCMaxConnectionIdle)
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.GRPCMaxRecvBytes == 0 {
		l.GRPCMaxRecvBytes = d.GRPCMaxRecvBytes
	}
	if l.MaxConcurrentStreams == 0 {
		l.MaxConcurrentStreams = d.MaxConcurrentStreams
	}
	return l
}

// Validate reports a negative limit.
func (l Limits) Validate() error {
	if l.MaxBodyBytes < 0 || l.MaxUploadBodyBytes < 0 || l.MaxLineBytes < 0 || l.MinBodyRate < 0 || l.MaxHeaderBytes < 0 ||
		l.GRPCMaxRecvBytes < 0 || l.ReadHeaderTimeout < 0 || l.BodyReadTimeout < 0 || l.IdleTimeout < 0 ||
		l.GRPCKeepaliveMinTime < 0 || l.GRPCMaxConnectionIdle < 0 {
		return fmt.Errorf("server: negative limit in %+v", l)
	}
	return nil
}

// WithLimits sets the server's resource limits (zero fields: defaults).
func WithLimits(l Limits) Option { return func(c *config) { c.limits = l } }

// WithUploadRoute marks a REST path (exact, e.g.
// "/v1/registry/uploads:stream") as an upload: its body may reach
// Limits.MaxUploadBodyBytes and be NDJSON (Content-Type
// application/x-ndjson) as well as JSON.
func WithUploadRoute(path string) Option {
	return func(c *config) { c.uploadRoutes = append(c.uploadRoutes, path) }
}

// grpcOptions are the gRPC server options of l.
func (l Limits) grpcOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(l.GRPCMaxRecvBytes),
		grpc.MaxConcurrentStreams(l.MaxConcurrentStreams),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: l.GRPCKeepaliveMinTime, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: l.GRPCMaxConnectionIdle}),
	}
}

// httpServer sets l's limits on srv.
func (l Limits) httpServer(srv *http.Server) {
	srv.ReadHeaderTimeout = l.ReadHeaderTimeout
	srv.IdleTimeout = l.IdleTimeout
	srv.MaxHeaderBytes = l.MaxHeaderBytes
	srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: int(min(l.MaxConcurrentStreams, 1<<31-1))}
}

// bodyError is why a request body was cut: the HTTP status and the gRPC
// code of the JSON error.
type bodyError struct {
	httpStatus int
	code       codes.Code
	msg        string
}

func (e *bodyError) Error() string { return e.msg }

// status is the error as the gateway's error handler writes it.
func (e *bodyError) status() error { return status.Error(e.code, e.msg) }

// bodyGuard wraps a request body: it counts bytes against a limit (and
// NDJSON lines against theirs), gives each read a deadline and checks the
// rate the body arrives at over the time spent waiting for it. The first
// limit hit sticks: later reads fail with it, and the gateway's error
// handler answers with its status.
type bodyGuard struct {
	body     io.ReadCloser
	rc       *http.ResponseController
	limit    int64
	maxLine  int64 // 0: no line limit
	timeout  time.Duration
	minRate  int64
	read     int64
	line     int64 // bytes since the last newline
	waited   time.Duration
	err      *bodyError
	deadline bool // a read deadline is set on the connection
}

func (g *bodyGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	// The deadline covers this read only: a connection read after the
	// body (net/http's background read while a response streams) must not
	// inherit it.
	g.deadline = g.rc.SetReadDeadline(time.Now().Add(g.timeout)) == nil
	start := time.Now()
	n, err := g.body.Read(p)
	g.waited += time.Since(start)
	if g.deadline {
		_ = g.rc.SetReadDeadline(time.Time{})
	}
	g.read += int64(n)
	if g.maxLine > 0 {
		if i := bytes.LastIndexByte(p[:n], '\n'); i >= 0 {
			g.line = int64(n - 1 - i)
		} else {
			g.line += int64(n)
		}
	}
	var ne net.Error
	switch {
	case g.read > g.limit:
		g.fail(http.StatusRequestEntityTooLarge, codes.ResourceExhausted, fmt.Sprintf("request body larger than %d bytes", g.limit))
	case g.maxLine > 0 && g.line > g.maxLine:
		g.fail(http.StatusRequestEntityTooLarge, codes.ResourceExhausted, fmt.Sprintf("a line of the request body is longer than %d bytes", g.maxLine))
	case err != nil && (errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())):
		g.fail(http.StatusRequestTimeout, codes.DeadlineExceeded, fmt.Sprintf("no request body bytes for %v", g.timeout))
	case g.waited > g.timeout && float64(g.read) < float64(g.minRate)*g.waited.Seconds():
		g.fail(http.StatusRequestTimeout, codes.DeadlineExceeded,
			fmt.Sprintf("request body too slow: %d bytes in %v, want at least %d bytes/s", g.read, g.waited.Round(time.Millisecond), g.minRate))
	}
	if g.err != nil {
		// None of this read's bytes: a decoder must not complete a value
		// from the bytes that crossed the limit.
		return 0, g.err
	}
	return n, err
}

// fail records the limit hit. net/http then drains at most 256 KiB of the
// rest before it closes the connection (so that the client, still
// sending, reads the answer rather than a reset): that read gets the
// body read timeout, no more.
func (g *bodyGuard) fail(httpStatus int, code codes.Code, msg string) {
	g.err = &bodyError{httpStatus: httpStatus, code: code, msg: msg}
	_ = g.rc.SetReadDeadline(time.Now().Add(g.timeout))
}

func (g *bodyGuard) Close() error { return g.body.Close() }

type guardKey struct{}

// bodyFailure returns why r's body was cut, or nil.
func bodyFailure(ctx context.Context) *bodyError {
	if g, ok := ctx.Value(guardKey{}).(*bodyGuard); ok && g.err != nil {
		return g.err
	}
	return nil
}

// mutation reports whether a request changes state and so must carry a
// JSON body: POST, PUT and PATCH always, DELETE when it has a body.
func mutation(r *http.Request) bool {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return true
	case http.MethodDelete:
		return r.ContentLength > 0 || len(r.TransferEncoding) > 0
	}
	return false
}

// limitsMiddleware enforces the REST limits: mutations must be JSON (415:
// no cross-site form or text/plain request reaches a handler), bodies are
// bounded in size and time (413, 408).
func (s *Server) limitsMiddleware(next http.Handler) http.Handler {
	l := s.cfg.limits
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upload := slices.Contains(s.cfg.uploadRoutes, r.URL.Path)
		if mutation(r) {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || !(mt == "application/json" || (upload && mt == "application/x-ndjson")) {
				want := "application/json"
				if upload {
					want += " or application/x-ndjson"
				}
				s.rejectBody(w, r, http.StatusUnsupportedMediaType, codes.InvalidArgument,
					fmt.Sprintf("%s %s needs Content-Type %s, got %q", r.Method, r.URL.Path, want, r.Header.Get("Content-Type")))
				return
			}
		}
		limit, maxLine := l.MaxBodyBytes, int64(0)
		if upload {
			limit, maxLine = l.MaxUploadBodyBytes, l.MaxLineBytes
		}
		if r.ContentLength > limit {
			s.rejectBody(w, r, http.StatusRequestEntityTooLarge, codes.ResourceExhausted,
				fmt.Sprintf("request body of %d bytes, larger than %d", r.ContentLength, limit))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			g := &bodyGuard{body: r.Body, rc: http.NewResponseController(w), limit: limit, maxLine: maxLine,
				timeout: l.BodyReadTimeout, minRate: l.MinBodyRate}
			r.Body = g
			r = r.WithContext(context.WithValue(r.Context(), guardKey{}, g))
		}
		next.ServeHTTP(w, r)
	})
}

// rejectBody answers a request whose body is not read, closing the
// connection afterwards; net/http drains a small body first (within the
// body read timeout) so that the client reads the answer, not a reset.
func (s *Server) rejectBody(w http.ResponseWriter, r *http.Request, httpStatus int, code codes.Code, msg string) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.limits.BodyReadTimeout))
	w.Header().Set("Connection", "close")
	s.writeError(w, r, httpStatus, status.Error(code, msg))
}
