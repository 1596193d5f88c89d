package quantizer

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/proto/gateway"
)

// TestREST drives the service through the REST gateway as `bitnet up`
// mounts it: create a job, then watch it as newline-delimited JSON.
func TestREST(t *testing.T) {
	e, _ := pushed(t)
	client := serve(t, e.q)
	mux := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, gateway.Marshaler()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := quantizerv1.RegisterQuantizerServiceHandlerClient(ctx, mux, client); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(mux)
	defer hs.Close()

	body := `{"source": {"model": "tiny"}, "target": "QUANT_TYPE_TQ2_0", "output": {"name": "rest"},
		"calibration": {"text": "Light consists of Parts.", "context_length": 16}}`
	resp, err := http.Post(hs.URL+"/v1/quantizer/jobs", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Job struct {
			JobID string `json:"job_id"`
		} `json:"job"`
	}
	err = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || created.Job.JobID == "" {
		t.Fatalf("POST /v1/quantizer/jobs: status %d, %v, job %q", resp.StatusCode, err, created.Job.JobID)
	}

	resp, err = http.Get(hs.URL + "/v1/quantizer/jobs/" + created.Job.JobID + ":watch")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != gateway.NDJSONContentType {
		t.Errorf("watch Content-Type %q, want %q", ct, gateway.NDJSONContentType)
	}
	var last struct {
		Job struct {
			State  string `json:"state"`
			Result struct {
				Name    string `json:"name"`
				Version int    `json:"version"`
			} `json:"result"`
			Report struct {
				Linears []json.RawMessage `json:"linears"`
			} `json:"report"`
		} `json:"job"`
	}
	lines := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines++
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatalf("line %d %q: %v", lines, sc.Text(), err)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if lines < 2 || last.Job.State != "JOB_STATE_SUCCEEDED" || last.Job.Result.Name != "rest" || last.Job.Result.Version != 1 || len(last.Job.Report.Linears) != 14 {
		t.Errorf("%d lines, last %+v: want a stream ending SUCCEEDED as rest@1 with 14 linears", lines, last.Job)
	}

	resp, err = http.Get(hs.URL + "/v1/quantizer/jobs/qj-nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET unknown job: status %d, want 404", resp.StatusCode)
	}
}
