package mesh

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
	trainerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/trainer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
)

// TestRelayedErrorMessages checks the messages of errors that cross two
// services (issue 15): a quantizer, a trainer and an inference node that
// reach a separate registry over gRPC answer an unknown model with
// NOT_FOUND naming what was not found, without gRPC internals (a code name
// such as "NotFound:" or "rpc error" inside the message) and without a
// prefix repeated ("resolve x: resolve x").
func TestRelayedErrorMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five services")
	}
	disc := discovery.NewMemory()
	defer disc.Close()
	base := Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "-", DataDir: t.TempDir(), Discovery: disc,
		CheckInterval: 100 * time.Millisecond, PublishInterval: 100 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		Version: "errors", MemoryBudget: 256 << 20,
	}
	with := func(name string) Config {
		c := base
		c.NodeName = name
		return c
	}
	serve(t, Registry, with("registry"))
	quant := serve(t, Quantizer, with("quantizer"))
	train := serve(t, Trainer, with("trainer"))
	serve(t, Inference, with("node"))
	rt := serve(t, Router, with("router"))

	dial := func(r *running) *grpc.ClientConn {
		conn, err := grpc.NewClient(r.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rc := inferencev1.NewInferenceServiceClient(dial(rt))
	eventually(t, 20*time.Second, "router sees the node", func() error {
		_, err := rc.NodeInfo(ctx, &inferencev1.NodeInfoRequest{})
		return err
	})

	tests := []struct {
		name string
		call func() error
		want codes.Code
		says string // what the message must name
	}{
		{"quantize an unknown model", func() error {
			_, err := quantizerv1.NewQuantizerServiceClient(dial(quant)).CreateJob(ctx, &quantizerv1.CreateJobRequest{
				Source: &quantizerv1.Source{Source: &quantizerv1.Source_Model{Model: "nope"}},
			})
			return err
		}, codes.NotFound, `"nope"`},
		{"fine-tune an unknown parent", func() error {
			_, err := trainerv1.NewTrainerServiceClient(dial(train)).CreateJob(ctx, &trainerv1.CreateJobRequest{
				Model:           &trainerv1.ModelSpec{Init: &trainerv1.ModelSpec_Parent{Parent: "nope"}},
				Dataset:         &trainerv1.Dataset{Sha256: []string{strings.Repeat("ab", 32)}},
				Hyperparameters: &trainerv1.Hyperparameters{Steps: 1},
			})
			return err
		}, codes.NotFound, `nope`},
		{"generate with an unknown model", func() error {
			s, err := rc.Generate(ctx, &inferencev1.GenerateRequest{Model: "nope", Prompt: "x"})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}, codes.NotFound, `"nope"`},
		{"unload an unknown alias", func() error {
			_, err := rc.UnloadModel(ctx, &inferencev1.UnloadModelRequest{Model: "nope:prod"})
			return err
		}, codes.NotFound, `"nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			msg := status.Convert(err).Message()
			t.Logf("%v: %s", status.Code(err), msg)
			if status.Code(err) != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !strings.Contains(msg, tc.says) {
				t.Errorf("got message %q, want it to name %s", msg, tc.says)
			}
			for _, c := range []codes.Code{codes.NotFound, codes.InvalidArgument, codes.Internal, codes.Unavailable} {
				if strings.Contains(msg, c.String()+":") {
					t.Errorf("got message %q, want no gRPC code names in it", msg)
				}
			}
			if strings.Contains(msg, "rpc error") {
				t.Errorf("got message %q, want no gRPC internals in it", msg)
			}
			if prefixRepeated(msg) {
				t.Errorf("got message %q, want no repeated prefix", msg)
			}
		})
	}
}

// prefixRepeated reports whether a ": "-separated part of msg starts with
// the same word as an earlier part ("resolve x: resolve x: ...").
func prefixRepeated(msg string) bool {
	seen := map[string]bool{}
	for _, part := range strings.Split(msg, ": ") {
		f := strings.Fields(part)
		if len(f) == 0 {
			continue
		}
		if seen[f[0]] {
			return true
		}
		seen[f[0]] = true
	}
	return false
}
