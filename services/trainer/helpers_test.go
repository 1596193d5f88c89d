package trainer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	trainerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/trainer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
)

const tokenizerPath = "../../testdata/tokenizer/opticks-bpe600.json"

// tinyConfig is the smallest model of the tests: hidden 32, 2 layers, the
// 600-token opticks tokenizer.
func tinyConfig() string {
	b, _ := json.Marshal(map[string]any{
		"architectures": []string{"BitNetForCausalLM"}, "model_type": "bitnet",
		"vocab_size": 600, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
		"num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64,
		"rms_norm_eps": 1e-5, "rope_theta": 500000.0, "hidden_act": "relu2", "tie_word_embeddings": true,
	})
	return string(b)
}

// env is a registry Store, a Trainer on it and a loopback gRPC client.
type env struct {
	store   *registry.Store
	workDir string
	tr      *Trainer
	client  trainerv1.TrainerServiceClient
	stopSrv func()
}

func newEnv(t *testing.T, opts ...Option) *env {
	t.Helper()
	store, err := registry.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{store: store, workDir: t.TempDir()}
	e.start(t, opts...)
	return e
}

// start opens a Trainer on the env's work directory and serves it.
func (e *env) start(t *testing.T, opts ...Option) {
	t.Helper()
	b := registry.NewBackend(e.store)
	tr, err := New(b, b, append([]Option{WithWorkDir(e.workDir)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	NewServer(tr).Register(g)
	go g.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	e.tr, e.client = tr, trainerv1.NewTrainerServiceClient(conn)
	stopped := false
	e.stopSrv = func() {
		if !stopped {
			stopped = true
			tr.Close() // first: a running job stops as soon as possible
			conn.Close()
			g.Stop()
		}
	}
	t.Cleanup(e.stopSrv)
}

// put stores data as a blob and returns its hex digest.
func (e *env) put(t *testing.T, data []byte) string {
	t.Helper()
	b, err := e.store.PutBlob(context.Background(), bytes.NewReader(data), "")
	if err != nil {
		t.Fatal(err)
	}
	return b.Digest.Hex()
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// scratchRequest is a tiny from-scratch job on the test text.
func (e *env) scratchRequest(t *testing.T, steps uint32, name string) *trainerv1.CreateJobRequest {
	t.Helper()
	return &trainerv1.CreateJobRequest{
		Model: &trainerv1.ModelSpec{
			Init:            &trainerv1.ModelSpec_ConfigJson{ConfigJson: tinyConfig()},
			TokenizerSha256: e.put(t, readFile(t, tokenizerPath)),
		},
		Dataset:            &trainerv1.Dataset{Sha256: []string{e.put(t, readFile(t, "testdata/opticks-8k.txt"))}, ValidationFraction: 0.1},
		Hyperparameters:    &trainerv1.Hyperparameters{Steps: steps, BatchSize: 4, SeqLen: 32, LearningRate: 3e-3, Seed: 7},
		Output:             &trainerv1.Output{Name: name, Labels: map[string]string{"test": "yes"}},
		EvalInterval:       2,
		EvalTokens:         256,
		CheckpointInterval: 3,
		Threads:            2,
	}
}

// watch streams a job until it is terminal (or until stop says so) and
// returns the last message.
func (e *env) watch(t *testing.T, id string, stop func(*trainerv1.Job) bool) *trainerv1.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := e.client.WatchJob(ctx, &trainerv1.WatchJobRequest{JobId: id})
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
		last = m.GetJob()
		if stop != nil && stop(last) {
			return last
		}
	}
}

func mustSucceed(t *testing.T, j *trainerv1.Job) {
	t.Helper()
	if j.GetState() != modelv1.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("job %s: got state %v (error %v), want SUCCEEDED", j.GetJobId(), j.GetState(), j.GetError())
	}
}

// materialise copies a version's files from their blobs into a directory.
func (e *env) materialise(t *testing.T, v registry.Version) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range v.Files {
		rc, _, err := e.store.OpenBlob(context.Background(), f.Digest)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Path), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
