package trainer

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	trainerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/trainer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/proto/gateway"
)

// TestREST drives the service through the REST gateway as `bitnet up`
// mounts it: create a job, then watch it as newline-delimited JSON.
func TestREST(t *testing.T) {
	e := newEnv(t)
	mux := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, gateway.Marshaler()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := trainerv1.RegisterTrainerServiceHandlerClient(ctx, mux, e.client); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(mux)
	defer hs.Close()

	cfg, _ := json.Marshal(tinyConfig())
	body := `{"model": {"config_json": ` + string(cfg) + `, "tokenizer_sha256": "` + e.put(t, readFile(t, tokenizerPath)) + `"},
		"dataset": {"sha256": ["` + e.put(t, readFile(t, "testdata/opticks-8k.txt")) + `"]},
		"hyperparameters": {"steps": 2, "batch_size": 2, "seq_len": 16, "schedule": "SCHEDULE_TWO_STAGE"},
		"output": {"name": "rest"}}`
	resp, err := http.Post(hs.URL+"/v1/trainer/jobs", "application/json", strings.NewReader(body))
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
		t.Fatalf("POST /v1/trainer/jobs: status %d, %v, job %q", resp.StatusCode, err, created.Job.JobID)
	}

	resp, err = http.Get(hs.URL + "/v1/trainer/jobs/" + created.Job.JobID + ":watch")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var last struct {
		Job struct {
			State   string `json:"state"`
			Results []struct {
				Name string `json:"name"`
			} `json:"results"`
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
	if lines < 2 || last.Job.State != "JOB_STATE_SUCCEEDED" || len(last.Job.Results) != 1 || last.Job.Results[0].Name != "rest" {
		t.Errorf("%d lines, last %+v: want a stream ending SUCCEEDED as rest", lines, last.Job)
	}

	resp, err = http.Get(hs.URL + "/v1/trainer/jobs/tj-nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET unknown job: status %d, want 404", resp.StatusCode)
	}
}
