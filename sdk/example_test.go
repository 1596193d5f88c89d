package sdk_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"

	"google.golang.org/grpc"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
)

// A registry on a loopback port: push a Hugging Face directory, then pull
// the version back.
func ExampleRegistryClient_Push() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "sdk-example")
	defer os.RemoveAll(tmp)
	store, err := registry.Open(filepath.Join(tmp, "registry"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	gs := grpc.NewServer()
	registry.NewServer(store).Register(gs)
	go gs.Serve(lis)
	defer gs.Stop()

	c, err := sdk.Dial(ctx, lis.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	res, err := c.Registry().Push(ctx, "tiny", "../testdata/models/tiny-gqa-packed", &sdk.PushOptions{Aliases: []string{"prod"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Ref, res.Version.GetFormat(), res.Version.GetQuantType())

	pulled, err := c.Registry().Pull(ctx, "tiny:prod", filepath.Join(tmp, "out"), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(pulled.Ref, len(pulled.Paths), "files")
	// Output:
	// tiny@1 MODEL_FORMAT_HF_PACKED QUANT_TYPE_I2_S
	// tiny@1 4 files
}

// Stream a generation from the router of a running mesh.
func ExampleInferenceClient_Generate() {
	ctx := context.Background()
	c, err := sdk.Dial(ctx, "127.0.0.1:50051")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	s, err := c.Inference().Generate(ctx, &inferencev1.GenerateRequest{Model: "tiny:prod", Prompt: "The light", MaxTokens: 32, Require: []string{"avx2"}})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	for s.Next() {
		fmt.Print(s.Text())
	}
	if err := s.Err(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("\nserved by", s.Final().GetNode(), "with", s.Final().GetKernel())
}

// Quantize a registry version to TQ2_0 and wait for the result.
func ExampleQuantizerClient_Watch() {
	ctx := context.Background()
	c, err := sdk.Dial(ctx, "127.0.0.1:50051")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	job, err := c.Quantizer().CreateJob(ctx, &quantizerv1.CreateJobRequest{
		Source: &quantizerv1.Source{Source: &quantizerv1.Source_Model{Model: "tiny@1"}},
		Target: modelv1.QuantType_QUANT_TYPE_TQ2_0,
	})
	if err != nil {
		log.Fatal(err)
	}
	done, err := c.Quantizer().Watch(ctx, job.GetJobId(), func(j *quantizerv1.Job) {
		fmt.Printf("%s %.0f%%\n", j.GetProgress().GetPhase(), 100*j.GetProgress().GetFraction())
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(done.GetResult().Text())
}
