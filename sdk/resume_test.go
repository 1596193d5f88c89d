package sdk_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
)

// breakingRegistry is the real registry whose first UploadBlob and first
// DownloadBlob streams break with UNAVAILABLE part-way, like a registry
// restart; it records the offsets each stream started at.
type breakingRegistry struct {
	*registry.Server
	mu         sync.Mutex
	uploads    []uint64
	downloads  []uint64
	breakAfter int // messages
}

type breakingUpload struct {
	registryv1.RegistryService_UploadBlobServer
	left int
}

func (b *breakingUpload) Recv() (*registryv1.UploadBlobRequest, error) {
	if b.left == 0 {
		return nil, status.Error(codes.Unavailable, "registry restarting")
	}
	b.left--
	msg, err := b.RegistryService_UploadBlobServer.Recv()
	if h := msg.GetHeader(); h != nil {
		b.left++ // the header does not count
	}
	return msg, err
}

func (r *breakingRegistry) UploadBlob(stream registryv1.RegistryService_UploadBlobServer) error {
	r.mu.Lock()
	n := len(r.uploads)
	r.mu.Unlock()
	w := &breakingUpload{RegistryService_UploadBlobServer: stream, left: -1}
	if n == 0 {
		w.left = r.breakAfter
	}
	// Record the header's offset through a peek at the first message.
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.uploads = append(r.uploads, first.GetHeader().GetOffset())
	r.mu.Unlock()
	return r.Server.UploadBlob(&replayUpload{breakingUpload: w, first: first})
}

// replayUpload hands the already-read header to the real server first.
type replayUpload struct {
	*breakingUpload
	first *registryv1.UploadBlobRequest
}

func (r *replayUpload) Recv() (*registryv1.UploadBlobRequest, error) {
	if r.first != nil {
		m := r.first
		r.first = nil
		return m, nil
	}
	return r.breakingUpload.Recv()
}

type breakingDownload struct {
	registryv1.RegistryService_DownloadBlobServer
	left int
}

func (b *breakingDownload) Send(m *registryv1.DownloadBlobResponse) error {
	if b.left == 0 {
		return status.Error(codes.Unavailable, "registry restarting")
	}
	b.left--
	return b.RegistryService_DownloadBlobServer.Send(m)
}

func (r *breakingRegistry) DownloadBlob(req *registryv1.DownloadBlobRequest, stream registryv1.RegistryService_DownloadBlobServer) error {
	r.mu.Lock()
	n := len(r.downloads)
	r.downloads = append(r.downloads, req.GetOffset())
	r.mu.Unlock()
	left := -1
	if n == 0 {
		left = r.breakAfter
	}
	return r.Server.DownloadBlob(req, &breakingDownload{RegistryService_DownloadBlobServer: stream, left: left})
}

func TestTransfersResumeWithinOneCall(t *testing.T) {
	ctx := context.Background()
	store, err := registry.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	br := &breakingRegistry{Server: registry.NewServer(store), breakAfter: 3}
	c := startServer(t, func(g grpc.ServiceRegistrar) { registryv1.RegisterRegistryServiceServer(g, br) })

	const size = 5<<20 + 17
	p := filepath.Join(t.TempDir(), "blob.bin")
	writeRandom(t, p, size)
	lm := &sdk.LocalModel{Files: []*sdk.LocalFile{{Path: "blob.bin", Local: p, Size: size}}}
	up, err := c.Registry().Upload(ctx, lm, &sdk.PushOptions{ChunkSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(br.uploads) != 2 || br.uploads[0] != 0 || br.uploads[1] != 3<<20 {
		t.Errorf("got upload streams starting at %v, want [0 %d]", br.uploads, 3<<20)
	}
	if up.BytesSent < size || up.BytesSent >= 2*size {
		t.Errorf("got %d bytes sent, want at least %d and less than twice that", up.BytesSent, size)
	}

	if _, err := c.Registry().RPC().CreateVersion(ctx, &registryv1.CreateVersionRequest{Name: "b", CreateModel: true,
		Format: 1, Files: up.Files}); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	pr, err := c.Registry().Pull(ctx, "b@1", dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(br.downloads) != 2 || br.downloads[0] != 0 || br.downloads[1] != 3<<20 || pr.BytesReceived != size {
		t.Errorf("got download streams at %v receiving %d bytes, want [0 %d] and %d", br.downloads, pr.BytesReceived, 3<<20, size)
	}
	assertSameFile(t, filepath.Join(dst, "blob.bin"), p)
	if _, err := os.Stat(filepath.Join(dst, "blob.bin.partial")); !os.IsNotExist(err) {
		t.Errorf("partial file left: %v", err)
	}
}
