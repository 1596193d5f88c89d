package auth

import (
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bitnet-mesh/bitnet-mesh/proto/gateway"
	"github.com/bitnet-mesh/bitnet-mesh/shared/errcode"
)

// Paths of shared/server that Middleware treats specially.
const (
	pathHealthz = "/healthz"
	pathReadyz  = "/readyz"
	pathMetrics = "/metrics"
)

// Middleware guards a whole REST port (shared/server.WithHTTPMiddleware):
//
//   - /healthz and /readyz stay open;
//   - with mTLS required, every other request needs a verified client
//     certificate;
//   - /metrics needs scope read when keys are required;
//   - every other request passes on: the gateway's routes are checked by
//     the gRPC interceptors (the gateway forwards Authorization as
//     metadata), and any other route must be wrapped with Handler.
func (g *Guard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case pathHealthz, pathReadyz:
			next.ServeHTTP(w, r)
			return
		}
		pi := httpPeer(r)
		if g.requireCert && pi.cert == nil {
			WriteHTTPError(w, status.Error(codes.Unauthenticated, "a client certificate from the mesh CA is required (mTLS)"))
			return
		}
		if r.URL.Path == pathMetrics && g.Enforcing() {
			key, sent := bearer(r.Header.Values("Authorization"))
			p, err := g.identify(r.Context(), key, sent, pi)
			if err == nil && !p.Scopes.Has(ScopeRead) {
				err = status.Errorf(codes.PermissionDenied, "%s needs scope %q; %s %s has %s", pathMetrics, ScopeRead, p.Kind, p.ID, p.Scopes)
			}
			if err != nil {
				WriteHTTPError(w, err)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Route says what an HTTP route guarded by Handler needs.
type Route struct {
	// Scope the caller's key must grant.
	Scope Scope
	// Stream counts the request against the key's concurrent streams (e.g.
	// a streamed chat completion).
	Stream bool
	// Mutating requests get an audit line.
	Mutating bool
}

// Handler guards one HTTP route that does not go through the gRPC gateway,
// such as the OpenAI-compatible /v1/chat/completions (Route{Scope:
// ScopeGenerate, Stream: true}) or /v1/models (Route{Scope: ScopeRead}):
// the caller is authenticated (Authorization: Bearer KEY, or the client
// certificate) and authorized as the gRPC interceptors do, the key's
// request rate and streams are limited, and next runs with the Principal on
// its context (FromContext). Handlers that generate charge the tokens with
// ChargeTokens. Errors are the gateway's JSON ({"code", "message",
// "details"}) with 401/403/429, WWW-Authenticate and Retry-After.
func (g *Guard) Handler(route Route, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		method := r.Method + " " + r.URL.Path
		key, sent := bearer(r.Header.Values("Authorization"))
		p, err := g.identify(ctx, key, sent, httpPeer(r))
		if err == nil && !p.Scopes.Has(route.Scope) {
			err = status.Errorf(codes.PermissionDenied, "%s needs scope %q; %s %s has %s", method, route.Scope, p.Kind, p.ID, p.Scopes)
		}
		var release func()
		if err == nil {
			_, release, err = g.admit(p, Rule{Scope: route.Scope}, route.Stream)
		}
		if err != nil {
			if route.Mutating {
				g.auditCall(ctx, p, method, nil, nil, err)
			}
			WriteHTTPError(w, err)
			return
		}
		defer release()
		rw := &codeWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rw, r.WithContext(WithPrincipal(ctx, p)))
		if route.Mutating {
			var herr error
			if rw.code >= 400 {
				herr = status.Error(runtimeCode(rw.code), http.StatusText(rw.code))
			}
			g.auditCall(ctx, p, method, nil, nil, herr)
		}
	})
}

// httpPeer is what the TLS connection says about an HTTP client.
func httpPeer(r *http.Request) peerInfo {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		return peerInfo{cert: r.TLS.VerifiedChains[0][0]}
	}
	return peerInfo{}
}

// WriteHTTPError writes err as the REST gateway writes errors: the status
// code for its gRPC code, a JSON google.rpc.Status body, WWW-Authenticate
// on 401 and Retry-After when the status carries a RetryInfo (or is 429).
func WriteHTTPError(w http.ResponseWriter, err error) {
	st := status.Convert(err)
	h := w.Header()
	errcode.SetHTTPHeaders(h, st)
	body, merr := gateway.Marshaler().Marshal(st.Proto())
	if merr != nil {
		body = []byte(`{"code": 13, "message": "failed to marshal error message"}`)
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(runtime.HTTPStatusFromCode(st.Code()))
	_, _ = w.Write(body)
}

// runtimeCode maps an HTTP status back to a gRPC code for audit lines.
func runtimeCode(httpCode int) codes.Code {
	switch httpCode {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusConflict:
		return codes.AlreadyExists
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	if httpCode >= 500 {
		return codes.Internal
	}
	return codes.Unknown
}

// codeWriter records the status code; Unwrap keeps Flush working.
type codeWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *codeWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *codeWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *codeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *codeWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
