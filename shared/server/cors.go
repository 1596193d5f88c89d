package server

import (
	"net/http"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// CORS: off unless origins are configured (WithCORS). Browsers then send
// no cross-origin request that needs a preflight (a JSON POST, any PUT,
// PATCH or DELETE), and the JSON-only rule for mutations
// (limitsMiddleware) refuses the simple ones a page can send without
// asking (form and text/plain POSTs). With origins configured, a preflight
// from one of them is answered (204) and its requests get
// Access-Control-Allow-Origin; a preflight from any other origin gets 403.

// corsMethods and corsHeaders are what a configured origin may use.
var (
	corsMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	corsHeaders = []string{"Authorization", "Content-Type", "X-Request-Id"}
)

// WithCORS allows browser pages from origins (scheme://host[:port], or "*"
// for any) to call the REST API. Without it no CORS header is sent.
func WithCORS(origins ...string) Option {
	return func(c *config) { c.corsOrigins = append(c.corsOrigins, origins...) }
}

func (s *Server) corsAllowed(origin string) bool {
	return origin != "" && (slices.Contains(s.cfg.corsOrigins, "*") || slices.Contains(s.cfg.corsOrigins, origin))
}

// corsMiddleware answers preflights and labels responses for the
// configured origins.
func (s *Server) corsMiddleware(next http.Handler) http.Handler {
	if len(s.cfg.corsOrigins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if !s.corsAllowed(origin) {
			if preflight {
				s.writeError(w, r, http.StatusForbidden, status.Errorf(codes.PermissionDenied, "origin %q may not call this API", origin))
				return
			}
			next.ServeHTTP(w, r) // no CORS headers: the browser keeps the response from the page
			return
		}
		allowOrigin := origin
		if slices.Contains(s.cfg.corsOrigins, "*") {
			allowOrigin = "*"
		}
		w.Header().Set("Access-Control-Allow-Origin", allowOrigin)
		if !preflight {
			w.Header().Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After")
			next.ServeHTTP(w, r)
			return
		}
		method := r.Header.Get("Access-Control-Request-Method")
		if !slices.Contains(corsMethods, method) {
			s.writeError(w, r, http.StatusForbidden, status.Errorf(codes.PermissionDenied, "method %q is not allowed cross-origin", method))
			return
		}
		for _, h := range strings.Split(r.Header.Get("Access-Control-Request-Headers"), ",") {
			if h = strings.TrimSpace(h); h != "" && !slices.ContainsFunc(corsHeaders, func(a string) bool { return strings.EqualFold(a, h) }) {
				s.writeError(w, r, http.StatusForbidden, status.Errorf(codes.PermissionDenied, "header %q is not allowed cross-origin", h))
				return
			}
		}
		w.Header().Set("Access-Control-Allow-Methods", strings.Join(corsMethods, ", "))
		w.Header().Set("Access-Control-Allow-Headers", strings.Join(corsHeaders, ", "))
		w.Header().Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
	})
}
