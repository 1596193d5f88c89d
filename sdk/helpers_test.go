package sdk_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"

	"github.com/bitnet-mesh/bitnet-mesh/sdk"
	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
)

// startServer serves register's services on a loopback port until the
// test ends and returns a client dialled to it.
func startServer(t testing.TB, register func(grpc.ServiceRegistrar), opts ...sdk.Option) *sdk.Client {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	register(gs)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(lis)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-done
	})
	c, err := sdk.Dial(context.Background(), lis.Addr().String(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// startRegistry serves a real registry over loopback gRPC.
func startRegistry(t *testing.T, opts ...sdk.Option) (*sdk.Client, *registry.Store) {
	return startRegistryB(t, opts...)
}

func startRegistryB(t testing.TB, opts ...sdk.Option) (*sdk.Client, *registry.Store) {
	t.Helper()
	store, err := registry.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := startServer(t, registry.NewServer(store).Register, opts...)
	t.Cleanup(func() { store.Close() })
	return c, store
}

// writeGGUF writes a small GGUF model with a TQ2_0 matrix.
func writeGGUF(t *testing.T, dir, name string) string {
	t.Helper()
	w := gguf.NewWriter()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.AddKV("general.architecture", "bitnet"))
	must(w.AddKV("bitnet.context_length", uint32(128)))
	must(w.AddKV("bitnet.vocab_size", uint32(32)))
	must(w.AddKV("general.name", name))
	tq := make([]byte, 4*66)
	for i := range tq {
		tq[i] = byte(i * 7)
	}
	must(w.AddTensor("blk.0.attn_q.weight", gguf.TQ2_0, []uint64{256, 4}, tq))
	must(w.AddTensor("output_norm.weight", gguf.F32, []uint64{8}, make([]byte, 32)))
	p := filepath.Join(dir, name+".gguf")
	must(w.WriteFile(p))
	return p
}

func writeRandom(t *testing.T, path string, n int) []byte {
	return writeRandomSeed(t, path, n, 12345)
}

func writeRandomB(b *testing.B, path string, n int) { writeRandomSeed(b, path, n, 12345) }

func writeRandomSeed(t testing.TB, path string, n int, seed uint32) []byte {
	t.Helper()
	b := make([]byte, n)
	x := seed
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}
