package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
	trainerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/trainer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
)

// envRunMain makes the test binary run the bitnet command (TestMain).
const envRunMain = "BITNET_TEST_RUN_MAIN"

// upProcess is a `bitnet up` running as a child process (the test binary
// re-executed as the command), so that a test can SIGKILL it.
type upProcess struct {
	cmd    *exec.Cmd
	client *sdk.Client
	mu     sync.Mutex
	stderr bytes.Buffer
}

// startUp starts `bitnet up` on data with free ports and dials it.
func startUp(t *testing.T, data string) *upProcess {
	t.Helper()
	p := &upProcess{cmd: exec.Command(os.Args[0], "up", "--data", data, "--grpc", "127.0.0.1:0", "--http", "-",
		"--log-level", "warn", "--threads", "1", "--console=false")}
	p.cmd.Env = append(os.Environ(), envRunMain+"=1")
	p.cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("stderr of bitnet up:\n%s", p.errors())
		}
	})
	ready := make(chan string, 1)
	go func() { // drains stdout until the process ends
		re := regexp.MustCompile(`ready: gRPC (\S+),`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				ready <- m[1]
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case addr := <-ready:
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := sdk.Dial(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		p.client = c
		return p
	case <-time.After(60 * time.Second):
		t.Fatalf("bitnet up: not ready within 60 s; stderr:\n%s", p.errors())
	}
	return nil
}

func (p *upProcess) errors() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// kill SIGKILLs the process and waits for it (no shutdown runs: no job is
// saved as stopped, the databases are left as they were).
func (p *upProcess) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// TestJobsSurviveSIGKILL: a `bitnet up` killed with SIGKILL in the middle
// of a quantize job and a training job comes back with its finished jobs
// (state, report, log), runs the quantize job again from the start and
// resumes the training job from its last checkpoint.
func TestJobsSurviveSIGKILL(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL: unix only")
	}
	data := t.TempDir()
	up := startUp(t, data)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := up.client
	if _, err := c.Registry().Push(ctx, "src", tinyHF, nil); err != nil {
		t.Fatal(err)
	}
	blob := func(path string) string {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Registry().Upload(ctx, &sdk.LocalModel{Files: []*sdk.LocalFile{{Path: "blob", Local: path, Size: fi.Size()}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.Files[0].GetSha256()
	}
	tok, corpus := blob(trainTokenizer), blob(trainCorpus)
	q := c.Quantizer()
	tr := trainerv1.NewTrainerServiceClient(c.Conn())

	// Finished before the kill: one quantize job, one training job.
	done, err := q.CreateJob(ctx, &quantizerv1.CreateJobRequest{Source: &quantizerv1.Source{Source: &quantizerv1.Source_Model{Model: "src@1"}},
		Output: &quantizerv1.Output{Name: "done"}})
	if err != nil {
		t.Fatal(err)
	}
	doneQ, err := q.Watch(ctx, done.GetJobId(), nil)
	if err != nil || doneQ.GetState() != modelv1.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("first quantize job: got %v, %v; want SUCCEEDED", doneQ.GetState(), err)
	}
	trainReq := func(steps, checkpointEvery uint32, name string) *trainerv1.CreateJobRequest {
		return &trainerv1.CreateJobRequest{
			Model: &trainerv1.ModelSpec{Init: &trainerv1.ModelSpec_ConfigJson{ConfigJson: `{"architectures":["BitNetForCausalLM"],
				"vocab_size":600,"hidden_size":16,"intermediate_size":32,"num_hidden_layers":1,"num_attention_heads":2,
				"num_key_value_heads":1,"max_position_embeddings":64,"tie_word_embeddings":true}`}, TokenizerSha256: tok},
			Dataset:            &trainerv1.Dataset{Sha256: []string{corpus}, ValidationFraction: 0.1},
			Hyperparameters:    &trainerv1.Hyperparameters{Steps: steps, BatchSize: 2, SeqLen: 16, LearningRate: 3e-3, Seed: 7},
			Output:             &trainerv1.Output{Name: name},
			EvalInterval:       max(steps/2, 1),
			EvalTokens:         64,
			CheckpointInterval: checkpointEvery,
			Threads:            1,
		}
	}
	doneT := trainUntil(ctx, t, tr, trainReq(4, 2, "trained"), func(j *trainerv1.Job) bool { return sdk.Terminal(j.GetState()) })
	if doneT.GetState() != modelv1.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("first training job: got %v %v, want SUCCEEDED", doneT.GetState(), doneT.GetError())
	}

	// Running at the kill: a long training job past its first checkpoint,
	// then a quantize job calibrating on the training text.
	long := trainUntil(ctx, t, tr, trainReq(1_000_000, 20, "long"), func(j *trainerv1.Job) bool { return len(j.GetCheckpoints()) > 0 })
	running, err := q.CreateJob(ctx, &quantizerv1.CreateJobRequest{Source: &quantizerv1.Source{Source: &quantizerv1.Source_Model{Model: "src@1"}},
		Output:      &quantizerv1.Output{Name: "running"},
		Calibration: &quantizerv1.Calibration{TextSource: &quantizerv1.Calibration_TextSha256{TextSha256: corpus}, MaxTokens: 20000, ContextLength: 128}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		j, err := q.Get(ctx, running.GetJobId())
		if err != nil {
			t.Fatal(err)
		}
		if j.GetState() == modelv1.JobState_JOB_STATE_RUNNING {
			break
		}
		if sdk.Terminal(j.GetState()) {
			t.Fatalf("second quantize job: %v %v before the kill, want it running", j.GetState(), j.GetError())
		}
		time.Sleep(10 * time.Millisecond)
	}
	up.kill()

	up = startUp(t, data)
	q, tr = up.client.Quantizer(), trainerv1.NewTrainerServiceClient(up.client.Conn())
	// The training job resumes from its last checkpoint.
	resumed := regexp.MustCompile(`resumed from the checkpoint at step (\d+)`)
	var step int
	j := watchTrain(ctx, t, tr, long.GetJobId(), func(j *trainerv1.Job) bool {
		for _, l := range j.GetLog() {
			if m := resumed.FindStringSubmatch(l.GetMessage()); m != nil {
				step, _ = strconv.Atoi(m[1])
				return int(j.GetMetrics().GetStep()) > step
			}
		}
		return sdk.Terminal(j.GetState())
	})
	if cps := long.GetCheckpoints(); step < int(cps[len(cps)-1].GetStep()) || j.GetState() != modelv1.JobState_JOB_STATE_RUNNING {
		t.Errorf("training job after the kill: got %v (%v), resumed at step %d; want it running again from step %d or later",
			j.GetState(), j.GetError(), step, cps[len(cps)-1].GetStep())
	}
	if _, err := tr.CancelJob(ctx, &trainerv1.CancelJobRequest{JobId: long.GetJobId()}); err != nil {
		t.Error(err)
	}
	// Finished jobs: as they were.
	got, err := q.Get(ctx, done.GetJobId())
	if err != nil || got.GetState() != modelv1.JobState_JOB_STATE_SUCCEEDED || got.GetResult().GetName() != "done" ||
		got.GetReport().GetPerplexityAfter() != doneQ.GetReport().GetPerplexityAfter() || len(got.GetReport().GetLinears()) == 0 ||
		len(got.GetLog()) != len(doneQ.GetLog()) {
		t.Errorf("finished quantize job after the kill: got %v %v, result %v, ppl %v, %d linears, %d log lines, %v; "+
			"want SUCCEEDED, done, ppl %v, the linears and %d log lines",
			got.GetState(), got.GetError(), got.GetResult(), got.GetReport().GetPerplexityAfter(), len(got.GetReport().GetLinears()),
			len(got.GetLog()), err, doneQ.GetReport().GetPerplexityAfter(), len(doneQ.GetLog()))
	}
	gotResp, err := tr.GetJob(ctx, &trainerv1.GetJobRequest{JobId: doneT.GetJobId()})
	gotT := gotResp.GetJob()
	if err != nil || gotT.GetState() != modelv1.JobState_JOB_STATE_SUCCEEDED || len(gotT.GetResults()) != 1 ||
		gotT.GetMetrics().GetStep() != 4 {
		t.Errorf("finished training job after the kill: got %v, results %v, step %d, %v; want SUCCEEDED with its result at step 4",
			gotT.GetState(), gotT.GetResults(), gotT.GetMetrics().GetStep(), err)
	}
	// The quantize job runs again from the start.
	again, err := q.Watch(ctx, running.GetJobId(), nil)
	if err != nil || again.GetState() != modelv1.JobState_JOB_STATE_SUCCEEDED || !logHas(quantizerLog(again), "stopped by a restart") {
		t.Errorf("running quantize job after the kill: got %v %v, %v, log %q; want SUCCEEDED after a restart",
			again.GetState(), again.GetError(), err, quantizerLog(again))
	}
}

func quantizerLog(j *quantizerv1.Job) []string {
	var out []string
	for _, l := range j.GetLog() {
		out = append(out, l.GetMessage())
	}
	return out
}

func logHas(log []string, s string) bool {
	for _, l := range log {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// trainUntil creates a training job and watches it until stop.
func trainUntil(ctx context.Context, t *testing.T, tr trainerv1.TrainerServiceClient, req *trainerv1.CreateJobRequest, stop func(*trainerv1.Job) bool) *trainerv1.Job {
	t.Helper()
	resp, err := tr.CreateJob(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return watchTrain(ctx, t, tr, resp.GetJob().GetJobId(), stop)
}

// watchTrain watches a training job until stop or its end.
func watchTrain(ctx context.Context, t *testing.T, tr trainerv1.TrainerServiceClient, id string, stop func(*trainerv1.Job) bool) *trainerv1.Job {
	t.Helper()
	st, err := tr.WatchJob(ctx, &trainerv1.WatchJobRequest{JobId: id})
	if err != nil {
		t.Fatal(err)
	}
	var last *trainerv1.Job
	for {
		m, err := st.Recv()
		if err == io.EOF {
			return last
		}
		if err != nil {
			t.Fatalf("watch %s: %v", id, err)
		}
		if last = m.GetJob(); stop(last) {
			return last
		}
	}
}
