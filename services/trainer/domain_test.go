package trainer

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
	"github.com/bitnet-mesh/bitnet-mesh/shared/train"
)

// domainRequest is a tiny job for in-process callers.
func (e *env) domainRequest(t *testing.T, steps int) Request {
	t.Helper()
	return Request{
		Model:           ModelSpec{ConfigJSON: tinyConfig(), TokenizerDigest: registry.Digest(e.put(t, readFile(t, tokenizerPath)))},
		Hyperparameters: Hyperparameters{Steps: steps, BatchSize: 2, SeqLen: 16, Seed: 3},
		Threads:         2,
	}
}

// runDomain creates a job and waits for it to finish.
func (e *env) runDomain(t *testing.T, req Request) Job {
	t.Helper()
	ctx := context.Background()
	j, err := e.tr.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var last Job
	if err := e.tr.Watch(ctx, j.ID, func(s Job) error { last = s; return nil }); err != nil {
		t.Fatal(err)
	}
	return last
}

func TestDataSources(t *testing.T) {
	e := newEnv(t)
	text := string(readFile(t, "testdata/opticks-8k.txt"))
	var jsonl strings.Builder
	for _, p := range strings.Split(text, "\n\n") {
		b, _ := json.Marshal(map[string]string{"text": p})
		jsonl.Write(append(b, '\n'))
	}
	half := len(text) * 3 / 4
	for _, tc := range []struct {
		name     string
		data     Dataset
		schedule string
		wantData string // dataset digest input
	}{
		{"inline text", Dataset{Text: text}, ScheduleConstant, text},
		{"jsonl blob", Dataset{Digests: []registry.Digest{registry.Digest(e.put(t, []byte(jsonl.String())))}, JSONL: true}, ScheduleTwoStage, jsonl.String()},
		{"two blobs and a validation file", Dataset{
			Digests:          []registry.Digest{registry.Digest(e.put(t, []byte(text[:half/2]))), registry.Digest(e.put(t, []byte(text[half/2:half])))},
			ValidationDigest: registry.Digest(e.put(t, []byte(text[half:]))),
		}, ScheduleCosine, text},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := e.domainRequest(t, 3)
			req.Dataset, req.Hyperparameters.Schedule = tc.data, tc.schedule
			j := e.runDomain(t, req)
			if j.State != jobs.StateSucceeded {
				t.Fatalf("got state %v (%v), want succeeded", j.State, j.Err)
			}
			if want := "sha256:" + sha256Hex([]byte(tc.wantData)); string(j.DatasetDigest) != want {
				t.Errorf("dataset digest: got %s, want %s", j.DatasetDigest, want)
			}
			if !(j.Metrics.ValLoss > 0) || len(j.Validation) == 0 {
				t.Errorf("validation: got loss %v, %d points", j.Metrics.ValLoss, len(j.Validation))
			}
			if _, err := os.Stat(filepath.Join(e.workDir, jobsDir, j.ID, inputsDir)); err == nil {
				t.Error("a succeeded job kept its inputs")
			}
		})
	}
}

// TestValidationSplit checks that a separate validation file becomes
// exactly the validation split, after every training sequence.
func TestValidationSplit(t *testing.T) {
	dir := t.TempDir()
	text := string(readFile(t, "testdata/opticks-8k.txt"))
	trainPath, valPath := filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.txt")
	os.WriteFile(trainPath, []byte(text[:6000]), 0o644)
	os.WriteFile(valPath, []byte(text[6000:]), 0o644)
	tok, err := tokenizer.Load(tokenizerPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := model.ParseConfig([]byte(tinyConfig()))
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []int{7, 16, 32} {
		out := filepath.Join(dir, "out", string(rune('a'+seq)))
		s := RunSpec{Config: cfg, DataPath: trainPath, ValidationPath: valPath, OutDir: out, Options: train.Options{Seq: seq}}
		os.MkdirAll(out, 0o755)
		path, frac, err := tokenizeData(context.Background(), s, tok)
		if err != nil {
			t.Fatal(err)
		}
		nTrain := int64(len(tok.Encode(text[:6000])))
		d, err := train.OpenDataset(path, seq, frac)
		if err != nil {
			t.Fatal(err)
		}
		nseq := int((d.Tokens() - 1) / int64(seq))
		if want := int((nTrain - 1) / int64(seq)); d.TrainSeqs != want || d.ValSeqs != nseq-want {
			t.Errorf("seq %d: got %d train and %d validation sequences, want %d and %d", seq, d.TrainSeqs, d.ValSeqs, want, nseq-want)
		}
		d.Close()
	}
}

func TestFailedJobPersists(t *testing.T) {
	e := newEnv(t)
	req := e.domainRequest(t, 3)
	req.Dataset = Dataset{Text: "too short"}
	j := e.runDomain(t, req)
	if j.State != jobs.StateFailed || !errors.Is(j.Err, jobs.ErrInvalid) {
		t.Fatalf("got state %v error %v, want failed with an invalid-argument error", j.State, j.Err)
	}
	e.stopSrv()
	e.start(t)
	got, err := e.tr.Get(context.Background(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != jobs.StateFailed || got.Err == nil || got.Err.Error() != j.Err.Error() || code(got.Err) != codes.InvalidArgument {
		t.Errorf("after restart: got %v %v (code %v), want failed with %q", got.State, got.Err, code(got.Err), j.Err)
	}
	if got.Request.Dataset.Text != "too short" || got.Request.Hyperparameters.BatchSize != 2 {
		t.Errorf("after restart: request %+v not restored", got.Request)
	}
}

func TestNewOptions(t *testing.T) {
	b := registry.NewBackend(nil)
	for _, opts := range [][]Option{
		{WithWorkers(0)}, {WithQueueSize(0)}, {WithMaxJobs(0)}, {WithRunner(nil)},
	} {
		if _, err := New(b, b, append(opts, WithWorkDir(t.TempDir()))...); !errors.Is(err, jobs.ErrInvalid) {
			t.Errorf("got %v, want jobs.ErrInvalid", err)
		}
	}
	if _, err := New(nil, b); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("nil source: got %v, want jobs.ErrInvalid", err)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, jobsDir, "tj-x"), 0o755)
	os.WriteFile(filepath.Join(dir, jobsDir, "tj-x", jobFile), []byte("{"), 0o644)
	if _, err := New(b, b, WithWorkDir(dir)); err == nil {
		t.Error("a corrupt job.json: got no error")
	}
}

func TestAppendLoss(t *testing.T) {
	steps := func(c []LossPoint) []int {
		var out []int
		for _, p := range c {
			out = append(out, p.Step)
		}
		return out
	}
	// Every step until full, then every other one: the curve spans the run.
	var c []LossPoint
	for s := 1; s <= 3*MaxLossPoints; s++ {
		c = appendLoss(c, LossPoint{Step: s, Loss: float64(s)})
		if len(c) > MaxLossPoints {
			t.Fatalf("step %d: got %d points, want at most %d", s, len(c), MaxLossPoints)
		}
	}
	got := steps(c)
	if got[0] != 1 || got[len(got)-1] < 3*MaxLossPoints-4 || len(got) < MaxLossPoints/2 {
		t.Errorf("got %d points from %d to %d, want at least %d from 1 to about %d", len(got), got[0], got[len(got)-1], MaxLossPoints/2, 3*MaxLossPoints)
	}
	for i := 2; i < len(got); i++ {
		if got[i]-got[i-1] != got[1]-got[0] {
			t.Fatalf("got uneven spacing %v around index %d", got[i-2:i+1], i)
		}
	}
	// A resumed run replaces the steps it repeats.
	c = nil
	for _, s := range []int{1, 2, 3, 4, 5, 3, 4} {
		c = appendLoss(c, LossPoint{Step: s, Loss: float64(s)})
	}
	if got, want := steps(c), []int{1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("after a resume: got steps %v, want %v", got, want)
	}
}
