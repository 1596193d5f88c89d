package openapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// swagger is the part of a spec the tests read.
type swagger struct {
	Swagger string                     `json:"swagger"`
	Paths   map[string]json.RawMessage `json:"paths"`
}

func parse(t *testing.T, b []byte) swagger {
	t.Helper()
	var s swagger
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("spec is not JSON: %v", err)
	}
	if s.Swagger != "2.0" {
		t.Fatalf("got swagger %q, want 2.0", s.Swagger)
	}
	return s
}

func TestSpecs(t *testing.T) {
	all, err := Spec("")
	if err != nil {
		t.Fatal(err)
	}
	merged := parse(t, all)
	tests := []struct {
		service string
		path    string // one path the service must have
	}{
		{"inference", "/v1/generate"},
		{"inference", "/v1/mesh/models"},
		{"quantizer", "/v1/quantizer/jobs"},
		{"registry", "/v1/registry/models/{name}/versions"},
		{"trainer", "/v1/trainer/jobs/{job_id}:watch"},
	}
	for _, tt := range tests {
		b, err := Spec(tt.service)
		if err != nil {
			t.Fatalf("Spec(%q): %v", tt.service, err)
		}
		s := parse(t, b)
		if _, ok := s.Paths[tt.path]; !ok {
			t.Errorf("Spec(%q) lacks path %s", tt.service, tt.path)
		}
		for p := range s.Paths {
			if _, ok := merged.Paths[p]; !ok {
				t.Errorf("%s lacks %s path %s", AllName, tt.service, p)
			}
		}
	}
	if _, err := Spec("nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Spec(nope): got error %v, want one naming the service", err)
	}
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(http.StripPrefix("/openapi", Handler()))
	defer srv.Close()
	tests := []struct {
		method, path string
		wantCode     int
	}{
		{http.MethodGet, "/openapi/" + AllName, http.StatusOK},
		{http.MethodGet, "/openapi/bitnet/registry/v1/registry.swagger.json", http.StatusOK},
		{http.MethodHead, "/openapi/" + AllName, http.StatusOK},
		{http.MethodGet, "/openapi/missing.json", http.StatusNotFound},
		{http.MethodPost, "/openapi/" + AllName, http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.wantCode {
			t.Errorf("%s %s: got status %d, want %d", tt.method, tt.path, resp.StatusCode, tt.wantCode)
		}
		if tt.wantCode == http.StatusOK && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: got Content-Type %q, want application/json", tt.method, tt.path, resp.Header.Get("Content-Type"))
		}
	}
}
