package sdk_test

import (
	"context"
	"path/filepath"
	"testing"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
)

// BenchmarkTransfer measures blob upload and download throughput over
// loopback gRPC against the real registry (fsync included).
func BenchmarkTransfer(b *testing.B) {
	const size = 32 << 20
	ctx := context.Background()
	c, _ := startRegistryB(b)
	dir := b.TempDir()
	p := filepath.Join(dir, "blob.bin")
	writeRandomB(b, p, size)
	b.Run("upload", func(b *testing.B) {
		b.SetBytes(size)
		for i := range b.N {
			// A fresh blob each time: the registry skips ones it has.
			b.StopTimer()
			q := filepath.Join(dir, "u.bin")
			writeRandomSeed(b, q, size, uint32(i+2))
			b.StartTimer()
			lm := &sdk.LocalModel{Files: []*sdk.LocalFile{{Path: "u.bin", Local: q, Size: size}}}
			if _, err := c.Registry().Upload(ctx, lm, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	lm := &sdk.LocalModel{Files: []*sdk.LocalFile{{Path: "blob.bin", Local: p, Size: size}}}
	up, err := c.Registry().Upload(ctx, lm, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Registry().RPC().CreateVersion(ctx, &registryv1.CreateVersionRequest{Name: "bench", CreateModel: true,
		Format: modelv1.ModelFormat_MODEL_FORMAT_GGUF, Files: up.Files}); err != nil {
		b.Fatal(err)
	}
	b.Run("download", func(b *testing.B) {
		b.SetBytes(size)
		for range b.N {
			if _, err := c.Registry().Pull(ctx, "bench@1", b.TempDir(), nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
