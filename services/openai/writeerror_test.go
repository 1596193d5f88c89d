package openai

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestWriteError: the server's own errors on the API's paths (405, 413,
// ...) and the mesh's 503 come in the OpenAI shape, 503 with Retry-After.
func TestWriteError(t *testing.T) {
	tests := []struct {
		status     int
		err        error
		typ, code  string
		retryAfter string
	}{
		{http.StatusMethodNotAllowed, status.Error(codes.Unimplemented, "method GET not allowed"), "invalid_request_error", "method_not_allowed", ""},
		{http.StatusRequestEntityTooLarge, status.Error(codes.ResourceExhausted, "request body too large"), "invalid_request_error", "request_too_large", ""},
		{http.StatusServiceUnavailable, status.Error(codes.Unavailable, "draining"), "server_error", "service_unavailable", "1"},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		WriteError(w, httptest.NewRequest("GET", "/v1/models", nil), tt.status, tt.err)
		var body struct {
			Error struct{ Message, Type, Code string } `json:"error"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("%d: got body %q: %v", tt.status, w.Body, err)
		}
		if w.Code != tt.status || body.Error.Type != tt.typ || body.Error.Code != tt.code || body.Error.Message == "" {
			t.Errorf("got %d %+v, want %d type %s code %s", w.Code, body.Error, tt.status, tt.typ, tt.code)
		}
		if got := w.Header().Get("Retry-After"); tt.status == http.StatusServiceUnavailable && got != tt.retryAfter {
			t.Errorf("%d: got Retry-After %q, want %q", tt.status, got, tt.retryAfter)
		}
	}
}
