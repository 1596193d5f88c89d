package registry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
)

func startServer(t *testing.T, s *Store) registryv1.RegistryServiceClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	g := grpc.NewServer()
	NewServer(s).Register(g)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return registryv1.NewRegistryServiceClient(conn)
}

func wantCode(t *testing.T, what string, err error, code codes.Code) {
	t.Helper()
	if got := status.Code(err); got != code {
		t.Fatalf("%s: got code %v (%v), want %v", what, got, err, code)
	}
}

// send streams data[from:] to an upload in chunks of chunk bytes, stopping
// after stop bytes (all when stop < 0).
func send(t *testing.T, c registryv1.RegistryServiceClient, id string, data []byte, from, chunk, stop int) (*registryv1.UploadBlobResponse, error) {
	t.Helper()
	st, err := c.UploadBlob(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	hdr := &registryv1.UploadBlobRequest{Content: &registryv1.UploadBlobRequest_Header{Header: &registryv1.UploadBlobHeader{UploadId: id, Offset: uint64(from)}}}
	if err := st.Send(hdr); err != nil {
		t.Fatal(err)
	}
	end := len(data)
	if stop >= 0 {
		end = from + stop
	}
	for off := from; off < end; off += chunk {
		msg := &registryv1.UploadBlobRequest{Content: &registryv1.UploadBlobRequest_Chunk{Chunk: data[off:min(off+chunk, end)]}}
		if err := st.Send(msg); err != nil {
			break // the server ended the stream; CloseAndRecv says why
		}
	}
	return st.CloseAndRecv()
}

func TestServer(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), WithMaxBlobSize(1<<20))
	c := startServer(t, s)
	data := bytes.Repeat([]byte("ternary weights "), 4096) // 64 KiB
	hex := digestOf(data).Hex()

	up, err := c.CreateUpload(ctx, &registryv1.CreateUploadRequest{Sha256: hex, SizeBytes: uint64(len(data))})
	if err != nil || up.Upload.State != registryv1.UploadState_UPLOAD_STATE_ACTIVE {
		t.Fatalf("CreateUpload: got %v, %v", up, err)
	}
	id := up.Upload.UploadId
	// Interrupted after 10000 bytes, then resumed from the status offset.
	resp, err := send(t, c, id, data, 0, 3000, 10000)
	if err != nil || resp.Upload.Offset != 10000 || resp.Upload.State != registryv1.UploadState_UPLOAD_STATE_ACTIVE {
		t.Fatalf("interrupted UploadBlob: got %v, %v", resp, err)
	}
	_, err = send(t, c, id, data, 5, 3000, -1)
	wantCode(t, "UploadBlob at a wrong offset", err, codes.FailedPrecondition)
	if !strings.Contains(status.Convert(err).Message(), "10000") {
		t.Errorf("wrong-offset message %q does not name the offset 10000", status.Convert(err).Message())
	}
	stat, err := c.GetUploadStatus(ctx, &registryv1.GetUploadStatusRequest{UploadId: id})
	if err != nil || stat.Upload.Offset != 10000 {
		t.Fatalf("GetUploadStatus: got %v, %v", stat, err)
	}
	resp, err = send(t, c, id, data, 10000, MaxUploadChunk, -1)
	if err != nil || resp.Upload.State != registryv1.UploadState_UPLOAD_STATE_COMPLETE || resp.Blob.GetSha256() != hex {
		t.Fatalf("resumed UploadBlob: got %v, %v", resp, err)
	}

	_, err = c.CreateVersion(ctx, &registryv1.CreateVersionRequest{Name: "tiny", Format: modelv1.ModelFormat_MODEL_FORMAT_GGUF,
		Files: []*registryv1.VersionFile{{Path: "model.gguf", Sha256: hex}}})
	wantCode(t, "CreateVersion of an unknown model", err, codes.NotFound)
	cv, err := c.CreateVersion(ctx, &registryv1.CreateVersionRequest{
		Name: "tiny", CreateModel: true, Format: modelv1.ModelFormat_MODEL_FORMAT_GGUF, QuantType: modelv1.QuantType_QUANT_TYPE_TQ2_0,
		Files:   []*registryv1.VersionFile{{Path: "model.gguf", Sha256: hex}},
		Lineage: &modelv1.Lineage{Source: modelv1.LineageSource_LINEAGE_SOURCE_QUANTIZER, Parent: &modelv1.ModelRef{Name: "base", Version: 1}},
		Aliases: []string{"prod"},
	})
	if err != nil || cv.Version.Ref.Version != 1 || cv.Version.SizeBytes != uint64(len(data)) ||
		cv.Version.QuantType != modelv1.QuantType_QUANT_TYPE_TQ2_0 || cv.Version.Lineage.GetParent().GetName() != "base" {
		t.Fatalf("CreateVersion: got %v, %v", cv, err)
	}
	_, err = c.CreateVersion(ctx, &registryv1.CreateVersionRequest{Name: "tiny", Format: modelv1.ModelFormat_MODEL_FORMAT_GGUF,
		Files: []*registryv1.VersionFile{{Path: "model.gguf", Sha256: digestOf([]byte("x")).Hex()}}})
	wantCode(t, "CreateVersion with a missing blob", err, codes.FailedPrecondition)

	res, err := c.ResolveModel(ctx, &registryv1.ResolveModelRequest{Ref: "tiny:prod"})
	if err != nil || res.Ref.Version != 1 || res.Ref.Alias != "prod" || res.Version.Files[0].Sha256 != hex {
		t.Fatalf("ResolveModel: got %v, %v", res, err)
	}
	for ref, code := range map[string]codes.Code{"tiny@x": codes.InvalidArgument, "../x": codes.InvalidArgument, "nope": codes.NotFound, "tiny:dev": codes.NotFound} {
		_, err := c.ResolveModel(ctx, &registryv1.ResolveModelRequest{Ref: ref})
		wantCode(t, "ResolveModel("+ref+")", err, code)
	}
	gm, err := c.GetModel(ctx, &registryv1.GetModelRequest{Name: "tiny"})
	if err != nil || gm.Model.LatestVersion != 1 || gm.Latest.GetRef().GetVersion() != 1 || gm.Model.Aliases["prod"] != 1 {
		t.Fatalf("GetModel: got %v, %v", gm, err)
	}
	lm, err := c.ListModels(ctx, &registryv1.ListModelsRequest{})
	if err != nil || len(lm.Models) != 1 {
		t.Fatalf("ListModels: got %v, %v", lm, err)
	}

	// Download from an offset with a limit, and the whole blob.
	tests := []struct {
		offset, limit uint64
		want          []byte
	}{
		{0, 0, data},
		{60000, 0, data[60000:]},
		{100, 50, data[100:150]},
		{uint64(len(data)), 0, nil},
	}
	for _, tt := range tests {
		ds, err := c.DownloadBlob(ctx, &registryv1.DownloadBlobRequest{Sha256: hex, Offset: tt.offset, Limit: tt.limit})
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		for {
			msg, err := ds.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("DownloadBlob(%d, %d): %v", tt.offset, tt.limit, err)
			}
			if msg.SizeBytes != uint64(len(data)) || msg.Offset != tt.offset+uint64(len(got)) {
				t.Fatalf("DownloadBlob chunk: got offset %d size %d", msg.Offset, msg.SizeBytes)
			}
			got = append(got, msg.Data...)
		}
		if !bytes.Equal(got, tt.want) {
			t.Errorf("DownloadBlob(%d, %d): got %d bytes, want %d", tt.offset, tt.limit, len(got), len(tt.want))
		}
	}
	ds, _ := c.DownloadBlob(ctx, &registryv1.DownloadBlobRequest{Sha256: hex, Offset: uint64(len(data)) + 1})
	_, err = ds.Recv()
	wantCode(t, "DownloadBlob beyond the end", err, codes.OutOfRange)

	// Bad uploads.
	_, err = c.CreateUpload(ctx, &registryv1.CreateUploadRequest{Sha256: hex[:10], SizeBytes: 1})
	wantCode(t, "CreateUpload with a bad sha256", err, codes.InvalidArgument)
	_, err = c.CreateUpload(ctx, &registryv1.CreateUploadRequest{Sha256: digestOf([]byte("big")).Hex(), SizeBytes: 2 << 20})
	wantCode(t, "CreateUpload above the limit", err, codes.ResourceExhausted)
	corrupt := []byte("corrupt!")
	up, err = c.CreateUpload(ctx, &registryv1.CreateUploadRequest{Sha256: digestOf([]byte("correct!")).Hex(), SizeBytes: uint64(len(corrupt))})
	if err != nil {
		t.Fatal(err)
	}
	_, err = send(t, c, up.Upload.UploadId, corrupt, 0, 3, -1)
	wantCode(t, "UploadBlob of corrupt bytes", err, codes.InvalidArgument)
	if st, err := c.GetUploadStatus(ctx, &registryv1.GetUploadStatusRequest{UploadId: up.Upload.UploadId}); err != nil || st.Upload.Offset != 0 {
		t.Fatalf("GetUploadStatus after a mismatch: got %v, %v, want offset 0", st, err)
	}
	again, err := c.CreateUpload(ctx, &registryv1.CreateUploadRequest{Sha256: hex, SizeBytes: uint64(len(data))})
	if err != nil || again.Upload.State != registryv1.UploadState_UPLOAD_STATE_COMPLETE {
		t.Fatalf("CreateUpload of a stored blob: got %v, %v", again, err)
	}

	_, err = c.DeleteVersion(ctx, &registryv1.DeleteVersionRequest{Name: "tiny", Version: 1})
	wantCode(t, "DeleteVersion of an aliased version", err, codes.FailedPrecondition)
	dv, err := c.DeleteVersion(ctx, &registryv1.DeleteVersionRequest{Name: "tiny", Version: 1, Force: true})
	if err != nil || len(dv.DeletedAliases) != 1 {
		t.Fatalf("DeleteVersion(force): got %v, %v", dv, err)
	}
	_, err = c.CreateModel(ctx, &registryv1.CreateModelRequest{Name: "tiny"})
	wantCode(t, "CreateModel of an existing name", err, codes.AlreadyExists)
	if dm, err := c.DeleteModel(ctx, &registryv1.DeleteModelRequest{Name: "tiny"}); err != nil || dm.DeletedVersions != 0 {
		t.Fatalf("DeleteModel: got %v, %v", dm, err)
	}
}

func TestServerUploadCancelledMidway(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	c := startServer(t, s)
	data := bytes.Repeat([]byte("abcdefgh"), 64<<10) // 512 KiB
	hex := digestOf(data).Hex()
	up, err := c.CreateUpload(ctx, &registryv1.CreateUploadRequest{Sha256: hex, SizeBytes: uint64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	id := up.Upload.UploadId
	cctx, cancel := context.WithCancel(ctx)
	st, err := c.UploadBlob(cctx)
	if err != nil {
		t.Fatal(err)
	}
	st.Send(&registryv1.UploadBlobRequest{Content: &registryv1.UploadBlobRequest_Header{Header: &registryv1.UploadBlobHeader{UploadId: id}}})
	for off := 0; off < len(data)/2; off += 16 << 10 {
		st.Send(&registryv1.UploadBlobRequest{Content: &registryv1.UploadBlobRequest_Chunk{Chunk: data[off : off+16<<10]}})
	}
	cancel()
	// The server keeps what it got; resuming from the status offset completes the blob.
	var offset uint64
	for range 100 {
		stat, err := c.GetUploadStatus(ctx, &registryv1.GetUploadStatusRequest{UploadId: id})
		if err != nil {
			t.Fatal(err)
		}
		offset = stat.Upload.Offset
		if offset > uint64(len(data)/2) {
			t.Fatalf("offset %d after sending %d bytes", offset, len(data)/2)
		}
		if _, err := send(t, c, id, data, int(offset), 100<<10, -1); err == nil {
			break
		} else if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("resume at %d: %v", offset, err)
		} // the cancelled stream was still flushing: ask again
	}
	if got := readBlob(t, s, digestOf(data)); !bytes.Equal(got, data) {
		t.Fatalf("blob after resume at %d differs", offset)
	}
}

// BenchmarkServerUpload streams a 16 MiB blob over an in-memory connection
// in 1 MiB chunks.
func BenchmarkServerUpload(b *testing.B) {
	const size, chunk = 16 << 20, 1 << 20
	ctx := context.Background()
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	lis := bufconn.Listen(4 << 20)
	g := grpc.NewServer()
	NewServer(s).Register(g)
	go g.Serve(lis)
	defer g.Stop()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	c := registryv1.NewRegistryServiceClient(conn)
	data := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, size/8)
	b.SetBytes(size)
	for i := 0; b.Loop(); i++ {
		data[0], data[1] = byte(i), byte(i>>8)
		up, err := c.CreateUpload(ctx, &registryv1.CreateUploadRequest{Sha256: digestOf(data).Hex(), SizeBytes: size})
		if err != nil {
			b.Fatal(err)
		}
		st, err := c.UploadBlob(ctx)
		if err != nil {
			b.Fatal(err)
		}
		st.Send(&registryv1.UploadBlobRequest{Content: &registryv1.UploadBlobRequest_Header{Header: &registryv1.UploadBlobHeader{UploadId: up.Upload.UploadId}}})
		for off := 0; off < size; off += chunk {
			st.Send(&registryv1.UploadBlobRequest{Content: &registryv1.UploadBlobRequest_Chunk{Chunk: data[off : off+chunk]}})
		}
		resp, err := st.CloseAndRecv()
		if err != nil || resp.Upload.State != registryv1.UploadState_UPLOAD_STATE_COMPLETE {
			b.Fatalf("upload: %v, %v", resp, err)
		}
	}
}
