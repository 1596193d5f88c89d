package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/trace/noop"
)

func TestEnabled(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
		{map[string]string{"OTEL_SERVICE_NAME": "x"}, false},
	}
	for _, tt := range tests {
		if got := Enabled(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("Enabled(%v): got %v, want %v", tt.env, got, tt.want)
		}
	}
}

func TestFromEnvOff(t *testing.T) {
	tr, err := FromEnv(context.Background(), func(string) string { return "" }, "bitnet", "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tr.Provider.(noop.TracerProvider); !ok {
		t.Errorf("got provider %T, want the no-op one when no OTEL_* variable asks for export", tr.Provider)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown of Off: %v", err)
	}
	_, err = FromEnv(context.Background(), func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"}[k]
	}, "bitnet", "test")
	if err == nil {
		t.Error("got no error for an unknown OTLP protocol")
	}
}

// TestFromEnvExportsOverOTLP points OTEL_EXPORTER_OTLP_ENDPOINT at a
// loopback HTTP server and checks that a span reaches it as an OTLP/HTTP
// protobuf POST to /v1/traces when the provider shuts down.
func TestFromEnvExportsOverOTLP(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		mu.Unlock()
		if len(b) == 0 {
			t.Error("got an empty export")
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "bitnet-test")
	tr, err := FromEnv(context.Background(), os.Getenv, "bitnet", "test")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.Tracer("test").Start(context.Background(), "router.choose")
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 || got[0] != "POST /v1/traces application/x-protobuf" {
		t.Errorf("got exports %q, want a POST /v1/traces application/x-protobuf", got)
	}
}
