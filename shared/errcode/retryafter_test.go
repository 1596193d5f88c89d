package errcode

import (
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRetryAfterHeader(t *testing.T) {
	tests := []struct {
		name string
		st   *status.Status
		want string
	}{
		{"429 without RetryInfo", status.New(codes.ResourceExhausted, "full"), "1"},
		{"503 without RetryInfo", status.New(codes.Unavailable, "draining"), "1"},
		{"503 with RetryInfo", status.Convert(WithRetry(codes.Unavailable, 2500*time.Millisecond, "loading")), "3"},
		{"400", status.New(codes.InvalidArgument, "bad"), ""},
	}
	for _, tt := range tests {
		h := http.Header{}
		RetryAfterHeader(h, tt.st)
		if got := h.Get("Retry-After"); got != tt.want {
			t.Errorf("%s: got Retry-After %q, want %q", tt.name, got, tt.want)
		}
	}
}
