package server

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bitnet-mesh/bitnet-mesh/shared/errcode"
)

// REST errors have one shape, whoever answers (a gRPC handler through the
// gateway, the body limits, the router of the gateway): the JSON form of
// google.rpc.Status, {"code": N, "message": "...", "details": [...]}, with
// the HTTP status of the code (or the more precise 405, 408, 413, 415).
// A 429 carries Retry-After: the RetryInfo delay when the error has one,
// else 1 s; a 401 the bearer challenge (errcode.SetHTTPHeaders).

// probeMethods are the methods a 405's Allow header is computed from.
var probeMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// writeError writes err (a status error) as the gateway would, with
// httpStatus.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, httpStatus int, err error) {
	if fn := s.errorWriter(r); fn != nil {
		errcode.SetHTTPHeaders(w.Header(), status.Convert(err))
		fn(w, r, httpStatus, err)
		return
	}
	_, m := runtime.MarshalerForRequest(s.mux, r)
	runtime.DefaultHTTPErrorHandler(r.Context(), s.mux, m, w, r, &runtime.HTTPStatusError{HTTPStatus: httpStatus, Err: err})
}

// gatewayError is the gateway's error handler: a request whose body was
// cut answers with the limit's status (408, 413) rather than the decode
// error it caused; a 429 gets Retry-After, a 401 WWW-Authenticate.
func (s *Server) gatewayError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if be := bodyFailure(r.Context()); be != nil {
		w.Header().Set("Connection", "close")
		err = &runtime.HTTPStatusError{HTTPStatus: be.httpStatus, Err: be.status()}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, &errorHeaderWriter{ResponseWriter: w, err: err}, r, err)
}

// errorHeaderWriter sets the headers clients act on right before the
// status line, after the default handler set its own (it puts the error
// message in WWW-Authenticate, which is not a challenge): the bearer
// challenge on 401 and Retry-After on 429 (errcode.SetHTTPHeaders).
type errorHeaderWriter struct {
	http.ResponseWriter
	err error
}

func (w *errorHeaderWriter) WriteHeader(code int) {
	var hs *runtime.HTTPStatusError
	err := w.err
	if errors.As(err, &hs) {
		err = hs.Err
	}
	errcode.SetHTTPHeaders(w.Header(), status.Convert(err))
	w.ResponseWriter.WriteHeader(code)
}

func (w *errorHeaderWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// routingError is the gateway's routing error handler: a path served for
// other methods answers 405 with Allow (not 501), an unknown one 404, both
// in the one error shape.
func (s *Server) routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if p, ok := r.Context().Value(probeKey{}).(*probe); ok {
		p.routed = false // a probe of a method the path does not take
		return
	}
	switch httpStatus {
	case http.StatusMethodNotAllowed:
		allow := s.allowed(r)
		if len(allow) == 0 {
			s.gatewayError(ctx, mux, m, w, r, &runtime.HTTPStatusError{HTTPStatus: http.StatusNotFound,
				Err: status.Errorf(codes.NotFound, "no route %s", r.URL.Path)})
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.gatewayError(ctx, mux, m, w, r, &runtime.HTTPStatusError{HTTPStatus: http.StatusMethodNotAllowed,
			Err: status.Errorf(codes.Unimplemented, "method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", "))})
	case http.StatusNotFound:
		s.gatewayError(ctx, mux, m, w, r, &runtime.HTTPStatusError{HTTPStatus: http.StatusNotFound,
			Err: status.Errorf(codes.NotFound, "no route %s %s", r.Method, r.URL.Path)})
	default:
		s.gatewayError(ctx, mux, m, w, r, &runtime.HTTPStatusError{HTTPStatus: httpStatus,
			Err: status.Error(codes.InvalidArgument, http.StatusText(httpStatus))})
	}
}

// errorHandler carries an HTTPRoute's ErrorWriter in errMux.
type errorHandler struct {
	http.Handler
	fn ErrorWriter
}

// routeErrors makes rt.Errors write the server's errors on rt's path, for
// every method.
func (s *Server) routeErrors(rt HTTPRoute) {
	path := rt.Pattern
	if i := strings.IndexByte(path, ' '); i >= 0 {
		path = strings.TrimSpace(path[i+1:])
	}
	defer func() { _ = recover() }() // a path two routes share is registered once
	s.errMux.Handle(path, errorHandler{Handler: http.NotFoundHandler(), fn: rt.Errors})
}

// errorWriter is the ErrorWriter of r's path, or nil.
func (s *Server) errorWriter(r *http.Request) ErrorWriter {
	if s.errMux == nil {
		return nil
	}
	probe := r.Clone(r.Context())
	probe.Method = http.MethodGet // the errMux patterns take any method
	if h, pattern := s.errMux.Handler(probe); pattern != "" {
		if eh, ok := h.(errorHandler); ok {
			return eh.fn
		}
	}
	return nil
}

// methodMiddleware answers 405 with Allow, before the body limits look at
// the request, when its path is served for other methods only (a plain
// route such as GET /healthz, an HTTPRoute, or a gateway route).
func (s *Server) methodMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions || s.routes(r) {
			next.ServeHTTP(w, r)
			return
		}
		allow := s.allowedAll(r)
		if len(allow) == 0 {
			next.ServeHTTP(w, r) // no route at all: 404 from the gateway
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeError(w, r, http.StatusMethodNotAllowed,
			status.Errorf(codes.Unimplemented, "method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", ")))
	})
}

// routes reports whether a route takes r's method and path.
func (s *Server) routes(r *http.Request) bool {
	if _, pattern := s.httpMux.Handler(r); pattern != "/" && pattern != "" {
		return true
	}
	return s.gatewayRoutes(r, r.Method)
}

// gatewayRoutes reports whether the gateway has a handler for method on
// r's path (a bodiless probe, stopped before the handler).
func (s *Server) gatewayRoutes(r *http.Request, method string) bool {
	p := &probe{}
	pr := r.Clone(context.WithValue(r.Context(), probeKey{}, p))
	pr.Method, pr.Body, pr.ContentLength = method, http.NoBody, 0
	pr.Header.Del("X-HTTP-Method-Override")
	s.mux.ServeHTTP(discard{}, pr)
	return p.routed
}

// allowedAll lists the methods the plain routes and the gateway take on
// r's path.
func (s *Server) allowedAll(r *http.Request) []string {
	var out []string
	for _, method := range probeMethods {
		pr := r.Clone(r.Context())
		pr.Method = method
		if _, pattern := s.httpMux.Handler(pr); (pattern != "/" && pattern != "") || s.gatewayRoutes(r, method) {
			out = append(out, method)
		}
	}
	return out
}

// probe marks a request the gateway routes only to learn whether a handler
// takes it (probeMiddleware stops it before the handler runs).
type probe struct{ routed bool }

type probeKey struct{}

// probeMiddleware is a gateway middleware: a probe request is recorded as
// routed and goes no further.
func probeMiddleware(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if p, ok := r.Context().Value(probeKey{}).(*probe); ok {
			p.routed = true
			return
		}
		next(w, r, params)
	}
}

// allowed lists the methods the gateway routes r's path for.
func (s *Server) allowed(r *http.Request) []string {
	var out []string
	for _, method := range probeMethods {
		if s.gatewayRoutes(r, method) {
			out = append(out, method)
		}
	}
	return out
}

// discard is a ResponseWriter that drops everything (probes write nothing).
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

// jsonErrors gives the plain handlers' errors the one JSON shape: a
// response of status 400 or more that a handler writes as text/plain (as
// http.Error and http.FileServer do: the console's "not found", a missing
// OpenAPI file, /readyz's 503) is sent as the google.rpc.Status JSON of
// that status, with the text as message; the handler's other headers
// (Allow, Cache-Control, ...) stay. Other responses pass untouched.
func (s *Server) jsonErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := &textErrorWriter{ResponseWriter: w}
		next.ServeHTTP(tw, r)
		if tw.code == 0 {
			return
		}
		msg := strings.TrimSpace(string(tw.text))
		if msg == "" {
			msg = http.StatusText(tw.code)
		}
		tw.Header().Del("Content-Length")
		s.writeError(w, r, tw.code, status.Error(codeOfHTTP(tw.code), msg))
	})
}

// textErrorWriter holds back a text/plain error response (code set) for
// jsonErrors to rewrite; anything else goes straight through.
type textErrorWriter struct {
	http.ResponseWriter
	wrote bool   // headers passed through
	code  int    // a held-back error status
	text  []byte // its body, up to maxErrorText bytes
}

const maxErrorText = 4 << 10

func (w *textErrorWriter) WriteHeader(code int) {
	if w.wrote || w.code != 0 {
		return
	}
	if code >= 400 && strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		w.code = code
		return
	}
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *textErrorWriter) Write(b []byte) (int, error) {
	if !w.wrote && w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.code != 0 {
		w.text = append(w.text, b[:min(len(b), max(0, maxErrorText-len(w.text)))]...)
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *textErrorWriter) Flush() {
	if w.code != 0 {
		return
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *textErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// codeOfHTTP is the gRPC code of an HTTP error status (the gateway's
// mapping, reversed).
func codeOfHTTP(httpStatus int) codes.Code {
	switch httpStatus {
	case http.StatusBadRequest, http.StatusUnsupportedMediaType:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return codes.Unimplemented
	case http.StatusConflict:
		return codes.Aborted
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		return codes.DeadlineExceeded
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusPreconditionFailed:
		return codes.FailedPrecondition
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	case 499:
		return codes.Canceled
	}
	if httpStatus >= 500 {
		return codes.Internal
	}
	return codes.InvalidArgument
}
