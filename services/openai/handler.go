package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/requestid"

	"go.uber.org/zap"
	"google.golang.org/grpc/metadata"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/logging"
)

// Scopes the Authorizer is asked about.
const (
	ScopeGenerate = "generate" // completions, chat, embeddings
	ScopeRead     = "read"     // model listing
)

// Authorizer checks a request before it is served; it returns nil, an
// *Error (401, 403, 429 with RetryAfter) or a gRPC status error.
type Authorizer func(r *http.Request, scope string) error

// DefaultMaxBody bounds request bodies (WithMaxBody).
const DefaultMaxBody = 8 << 20

type config struct {
	log     *zap.Logger
	models  Models
	auth    Authorizer
	owner   string
	maxBody int64
	now     func() time.Time
}

// Option configures a Handler.
type Option func(*config)

// WithLogger logs requests' failures (default: none).
func WithLogger(l *zap.Logger) Option { return func(c *config) { c.log = l } }

// WithModels sets where GET /v1/models lists models from (default: the
// inference client's ListModels, which knows the models the nodes can
// serve; RegistryModels lists every version and alias).
func WithModels(m Models) Option { return func(c *config) { c.models = m } }

// WithAuthorizer checks every request at the HTTP layer (default: none;
// the gRPC interceptors still see the Authorization header).
func WithAuthorizer(a Authorizer) Option { return func(c *config) { c.auth = a } }

// WithOwner sets the models' owned_by (default "bitnet-mesh").
func WithOwner(owner string) Option { return func(c *config) { c.owner = owner } }

// WithMaxBody bounds request bodies in bytes (default DefaultMaxBody).
func WithMaxBody(n int64) Option { return func(c *config) { c.maxBody = n } }

// Handler serves the OpenAI API over an InferenceService client (the
// router). Mount its Routes on the REST port.
type Handler struct {
	client inferencev1.InferenceServiceClient
	cfg    config
}

// New returns a Handler calling client (in the mesh: the router over the
// server's own gRPC connection).
func New(client inferencev1.InferenceServiceClient, opts ...Option) *Handler {
	c := config{log: zap.NewNop(), owner: "bitnet-mesh", maxBody: DefaultMaxBody, now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	if c.models == nil {
		c.models = RouterModels(client)
	}
	return &Handler{client: client, cfg: c}
}

// Route is a pattern (net/http ServeMux syntax) and its handler.
type Route struct {
	Pattern string
	Handler http.Handler
}

// Routes are the API's routes.
func (h *Handler) Routes() []Route {
	return []Route{
		{"GET /v1/models", h.guard(ScopeRead, h.listModels)},
		{"GET /v1/models/{id...}", h.guard(ScopeRead, h.getModel)},
		{"POST /v1/chat/completions", h.guard(ScopeGenerate, h.chat)},
		{"POST /v1/completions", h.guard(ScopeGenerate, h.completions)},
		{"POST /v1/embeddings", h.guard(ScopeGenerate, h.embeddings)},
	}
}

// Register mounts the routes on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	for _, r := range h.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
}

// handlerFunc serves a request or returns the error to send.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (h *Handler) guard(scope string, fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := func() error {
			if h.cfg.auth != nil {
				if err := h.cfg.auth(r, scope); err != nil {
					return err
				}
			}
			return fn(w, r)
		}()
		if err != nil {
			e := fromError(err)
			if e.Status >= 500 {
				logging.FromContext(r.Context(), h.cfg.log).Warn("openai request failed", zap.String("path", r.URL.Path), zap.Int("status", e.Status), zap.Error(err))
			}
			e.write(w)
		}
	})
}

// outgoing is the gRPC context of r: its cancellation and deadline, the
// request ID and the Authorization header as metadata.
func outgoing(r *http.Request) context.Context {
	ctx := r.Context()
	var kv []string
	if id := logging.RequestID(ctx); id != "" {
		kv = append(kv, requestid.Header, id)
	} else if id := r.Header.Get(requestid.Header); requestid.Valid(id) {
		kv = append(kv, requestid.Header, id)
	}
	if a := r.Header.Get("Authorization"); a != "" {
		kv = append(kv, "authorization", a)
	}
	if len(kv) == 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

// decode reads r's JSON body into v, bounded by the body limit. The
// Content-Type is not checked (curl -d sends a form type), as llama-server
// does not.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, h.cfg.maxBody)
	data, err := io.ReadAll(body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		e := invalid("", "request body larger than %d bytes", tooBig.Limit)
		e.Status = http.StatusRequestEntityTooLarge
		return e
	case err != nil:
		return invalid("", "reading the request body: %v", err)
	case len(strings.TrimSpace(string(data))) == 0:
		return invalid("", "empty request body: send a JSON object")
	}
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		var fe *fieldError
		switch {
		case errors.As(err, &te):
			field := strings.TrimPrefix(te.Field, "samplingParams.")
			return invalid(field, "%s: expected %s, got JSON %s", field, te.Type, te.Value)
		case errors.As(err, &fe):
			return invalid(fe.field, "%s", fe.Error())
		}
		return invalid("", "the request body is not valid JSON for this endpoint: %v", err)
	}
	return nil
}

// requestID names a response: the request's ID, with a prefix.
func requestID(r *http.Request, prefix string) string {
	if id := logging.RequestID(r.Context()); id != "" {
		return prefix + id
	}
	return prefix + requestid.New()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func fingerprint(kernel string) string {
	if kernel == "" {
		return "bitnet"
	}
	return fmt.Sprintf("bitnet-%s", kernel)
}
