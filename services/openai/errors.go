package openai

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bitnet-mesh/bitnet-mesh/shared/errcode"
)

// Error is an OpenAI API error: an HTTP status and the body's fields.
// Authorizers return it (or a gRPC status error) to refuse a request.
type Error struct {
	Status     int
	Message    string
	Type       string
	Param      string
	Code       string
	RetryAfter time.Duration // 429: the Retry-After header (rounded up to seconds)
}

func (e *Error) Error() string { return e.Message }

// invalid is a 400 invalid_request_error about param.
func invalid(param, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: param, Message: fmt.Sprintf(format, args...)}
}

// unsupported is a 400 naming a parameter the mesh does not implement.
func unsupported(param, why string) *Error {
	e := invalid(param, "%s is not supported%s", param, why)
	e.Code = "unsupported_parameter"
	return e
}

// fromError maps an error (a gRPC status from the mesh, an *Error, or
// anything else) to an API error.
func fromError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	st, ok := status.FromError(err)
	if !ok {
		return &Error{Status: http.StatusInternalServerError, Type: "server_error", Message: err.Error()}
	}
	msg := st.Message()
	switch st.Code() {
	case codes.InvalidArgument, codes.OutOfRange:
		return &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Message: msg}
	case codes.FailedPrecondition:
		return &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "unmet_constraint", Message: msg}
	case codes.NotFound:
		return &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Param: "model", Code: "model_not_found", Message: msg}
	case codes.Unauthenticated:
		return &Error{Status: http.StatusUnauthorized, Type: "authentication_error", Code: "invalid_api_key", Message: msg}
	case codes.PermissionDenied:
		return &Error{Status: http.StatusForbidden, Type: "permission_error", Code: "insufficient_scope", Message: msg}
	case codes.ResourceExhausted:
		e := &Error{Status: http.StatusTooManyRequests, Type: "rate_limit_error", Code: "rate_limit_exceeded", Message: msg, RetryAfter: time.Second}
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
				e.RetryAfter = ri.GetRetryDelay().AsDuration()
			}
		}
		return e
	case codes.Unavailable:
		e := &Error{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "service_unavailable", Message: msg, RetryAfter: time.Second}
		if d, ok := errcode.RetryAfter(st); ok {
			e.RetryAfter = d
		}
		return e
	case codes.DeadlineExceeded:
		return &Error{Status: http.StatusGatewayTimeout, Type: "server_error", Code: "timeout", Message: msg}
	case codes.Canceled:
		return &Error{Status: 499, Type: "invalid_request_error", Code: "canceled", Message: msg}
	case codes.Unimplemented:
		return &Error{Status: http.StatusNotImplemented, Type: "server_error", Code: "not_implemented", Message: msg}
	}
	return &Error{Status: http.StatusInternalServerError, Type: "server_error", Message: msg}
}

// WriteError writes err in the OpenAI error shape with httpStatus: the
// shared/server errors of the API's paths (405 with Allow, 413, 415, 408,
// CORS refusals) look like the API's own (shared/server.HTTPRoute.Errors).
func WriteError(w http.ResponseWriter, _ *http.Request, httpStatus int, err error) {
	e := *fromError(err)
	e.Status = httpStatus
	switch httpStatus {
	case http.StatusMethodNotAllowed:
		e.Type, e.Code = "invalid_request_error", "method_not_allowed"
	case http.StatusRequestTimeout:
		e.Type, e.Code = "invalid_request_error", "request_timeout"
	case http.StatusRequestEntityTooLarge:
		e.Type, e.Code = "invalid_request_error", "request_too_large"
	case http.StatusUnsupportedMediaType:
		e.Type, e.Code = "invalid_request_error", "unsupported_media_type"
	}
	e.write(w)
}

// body is the JSON of the error.
func (e *Error) body() map[string]any {
	field := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	return map[string]any{"error": map[string]any{"message": e.Message, "type": e.Type, "param": field(e.Param), "code": field(e.Code)}}
}

// write sends e as the response.
func (e *Error) write(w http.ResponseWriter) {
	if e.Status == 499 { // the client is gone
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", errcode.BearerChallenge)
	}
	if e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(max(e.RetryAfter, time.Second).Seconds()))))
	}
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(e.body())
}
