package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
)

// Chunk limits of the streaming RPCs (from the API).
const (
	MaxUploadChunk = 4 << 20
	DownloadChunk  = 1 << 20
	uploadBatch    = 8 << 20 // bytes gathered per durable write
)

// Server is the bitnet.registry.v1.RegistryService over a Store: it
// converts messages and maps the Store's errors to status codes.
type Server struct {
	registryv1.UnimplementedRegistryServiceServer
	store *Store
}

// NewServer returns the gRPC service for store; the caller owns store.
func NewServer(store *Store) *Server { return &Server{store: store} }

// Register registers the service on g (e.g. with shared/server.WithRegister).
func (s *Server) Register(g grpc.ServiceRegistrar) { registryv1.RegisterRegistryServiceServer(g, s) }

func listOpts(size uint32, token, prefix string) ListOptions {
	return ListOptions{PageSize: int(min(size, maxPageSize)), PageToken: token, Prefix: prefix}
}

// CreateModel implements RegistryService.
func (s *Server) CreateModel(ctx context.Context, req *registryv1.CreateModelRequest) (*registryv1.CreateModelResponse, error) {
	m, err := s.store.CreateModel(ctx, req.GetName(), ModelSpec{Description: req.GetDescription(), Labels: req.GetLabels()})
	if err != nil {
		return nil, toStatus(err)
	}
	return &registryv1.CreateModelResponse{Model: modelToPB(m)}, nil
}

// ListModels implements RegistryService.
func (s *Server) ListModels(ctx context.Context, req *registryv1.ListModelsRequest) (*registryv1.ListModelsResponse, error) {
	ms, next, err := s.store.ListModels(ctx, listOpts(req.GetPageSize(), req.GetPageToken(), req.GetNamePrefix()))
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &registryv1.ListModelsResponse{NextPageToken: next}
	for _, m := range ms {
		resp.Models = append(resp.Models, modelToPB(m))
	}
	return resp, nil
}

// GetModel implements RegistryService.
func (s *Server) GetModel(ctx context.Context, req *registryv1.GetModelRequest) (*registryv1.GetModelResponse, error) {
	m, err := s.store.GetModel(ctx, req.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &registryv1.GetModelResponse{Model: modelToPB(m)}
	if m.LatestVersion != 0 {
		v, err := s.store.GetVersion(ctx, m.Name, m.LatestVersion)
		switch {
		case err == nil:
			resp.Latest = versionToPB(v)
		case !errors.Is(err, ErrNotFound): // deleted meanwhile: leave it out
			return nil, toStatus(err)
		}
	}
	return resp, nil
}

// DeleteModel implements RegistryService.
func (s *Server) DeleteModel(ctx context.Context, req *registryv1.DeleteModelRequest) (*registryv1.DeleteModelResponse, error) {
	n, err := s.store.DeleteModel(ctx, req.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	return &registryv1.DeleteModelResponse{DeletedVersions: uint32(n)}, nil
}

// CreateVersion implements RegistryService.
func (s *Server) CreateVersion(ctx context.Context, req *registryv1.CreateVersionRequest) (*registryv1.CreateVersionResponse, error) {
	v, err := s.store.CreateVersion(ctx, req.GetName(), versionSpecFromPB(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return &registryv1.CreateVersionResponse{Version: versionToPB(v)}, nil
}

// ListVersions implements RegistryService.
func (s *Server) ListVersions(ctx context.Context, req *registryv1.ListVersionsRequest) (*registryv1.ListVersionsResponse, error) {
	vs, next, err := s.store.ListVersions(ctx, req.GetName(), listOpts(req.GetPageSize(), req.GetPageToken(), ""))
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &registryv1.ListVersionsResponse{NextPageToken: next}
	for _, v := range vs {
		resp.Versions = append(resp.Versions, versionToPB(v))
	}
	return resp, nil
}

// GetVersion implements RegistryService.
func (s *Server) GetVersion(ctx context.Context, req *registryv1.GetVersionRequest) (*registryv1.GetVersionResponse, error) {
	v, err := s.store.GetVersion(ctx, req.GetName(), req.GetVersion())
	if err != nil {
		return nil, toStatus(err)
	}
	return &registryv1.GetVersionResponse{Version: versionToPB(v)}, nil
}

// DeleteVersion implements RegistryService.
func (s *Server) DeleteVersion(ctx context.Context, req *registryv1.DeleteVersionRequest) (*registryv1.DeleteVersionResponse, error) {
	del, err := s.store.DeleteVersion(ctx, req.GetName(), req.GetVersion(), req.GetForce())
	if err != nil {
		return nil, toStatus(err)
	}
	if !req.GetForce() {
		del = nil
	}
	return &registryv1.DeleteVersionResponse{DeletedAliases: del}, nil
}

// SetAlias implements RegistryService.
func (s *Server) SetAlias(ctx context.Context, req *registryv1.SetAliasRequest) (*registryv1.SetAliasResponse, error) {
	m, prev, err := s.store.SetAlias(ctx, req.GetName(), req.GetAlias(), req.GetVersion())
	if err != nil {
		return nil, toStatus(err)
	}
	return &registryv1.SetAliasResponse{Model: modelToPB(m), PreviousVersion: prev}, nil
}

// DeleteAlias implements RegistryService.
func (s *Server) DeleteAlias(ctx context.Context, req *registryv1.DeleteAliasRequest) (*registryv1.DeleteAliasResponse, error) {
	prev, err := s.store.DeleteAlias(ctx, req.GetName(), req.GetAlias())
	if err != nil {
		return nil, toStatus(err)
	}
	return &registryv1.DeleteAliasResponse{PreviousVersion: prev}, nil
}

// ResolveModel implements RegistryService.
func (s *Server) ResolveModel(ctx context.Context, req *registryv1.ResolveModelRequest) (*registryv1.ResolveModelResponse, error) {
	v, err := s.store.Resolve(ctx, req.GetRef())
	if err != nil {
		return nil, toStatus(err)
	}
	return &registryv1.ResolveModelResponse{Ref: refToPB(v.Ref), Version: versionToPB(v)}, nil
}

// CreateUpload implements RegistryService.
func (s *Server) CreateUpload(ctx context.Context, req *registryv1.CreateUploadRequest) (*registryv1.CreateUploadResponse, error) {
	if req.GetSizeBytes() > math.MaxInt64 {
		return nil, status.Errorf(codes.ResourceExhausted, "create upload: size %d above the limit %d", req.GetSizeBytes(), s.store.MaxBlobSize())
	}
	u, err := s.store.BeginUpload(ctx, Digest(req.GetSha256()), int64(req.GetSizeBytes()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &registryv1.CreateUploadResponse{Upload: uploadToPB(u)}, nil
}

// UploadBlob implements RegistryService: a header, then chunks written in
// order; the last byte commits the upload.
func (s *Server) UploadBlob(stream registryv1.RegistryService_UploadBlobServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return status.Error(codes.InvalidArgument, "upload blob: empty stream, want a header first")
		}
		return err
	}
	h := first.GetHeader()
	if h == nil {
		return status.Error(codes.InvalidArgument, "upload blob: first message must be the header")
	}
	id := h.GetUploadId()
	u, err := s.store.UploadStatus(ctx, id)
	if err != nil {
		return toStatus(err)
	}
	if u.State == UploadComplete {
		return s.finishUpload(ctx, stream, u)
	}
	if h.GetOffset() != uint64(u.Offset) {
		return toStatus(&OffsetError{UploadID: id, Got: int64(min(h.GetOffset(), math.MaxInt64)), Offset: u.Offset})
	}
	// Chunks are batched into writes of up to uploadBatch bytes: each write
	// is fsynced and recorded, and that cost dominates small chunks.
	off := u.Offset
	var buf []byte
	flush := func(ctx context.Context) error {
		if len(buf) == 0 {
			return nil
		}
		var err error
		off, err = s.store.WriteChunk(ctx, id, off, buf)
		buf = buf[:0]
		return toStatus(err)
	}
	// done answers with the upload's state when another client completed
	// it meanwhile (two pushes of one blob): the blob is stored, which is
	// what this client wanted.
	done := func(err error) error {
		if u2, serr := s.store.UploadStatus(ctx, id); serr == nil && u2.State == UploadComplete {
			return s.finishUpload(ctx, stream, u2)
		}
		return err
	}
	for off+int64(len(buf)) < u.Size {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break // the client stops early; it resumes later from off
		}
		if err != nil {
			// Keep what arrived, so that the resume sends less: the stream's
			// ctx may be cancelled already, the bytes are still good.
			_ = flush(context.WithoutCancel(ctx))
			return err
		}
		chunk := msg.GetChunk()
		if msg.GetHeader() != nil {
			return status.Error(codes.InvalidArgument, "upload blob: a second header")
		}
		if len(chunk) > MaxUploadChunk {
			return status.Errorf(codes.InvalidArgument, "upload blob: chunk of %d bytes, at most %d", len(chunk), MaxUploadChunk)
		}
		buf = append(buf, chunk...)
		if len(buf) >= uploadBatch {
			if err := flush(ctx); err != nil {
				return done(err)
			}
		}
	}
	if err := flush(ctx); err != nil {
		return done(err)
	}
	if off == u.Size {
		if _, err := s.store.CommitUpload(ctx, id); err != nil {
			return toStatus(err)
		}
	}
	u, err = s.store.UploadStatus(ctx, id)
	if err != nil {
		return toStatus(err)
	}
	return s.finishUpload(ctx, stream, u)
}

func (s *Server) finishUpload(ctx context.Context, stream registryv1.RegistryService_UploadBlobServer, u Upload) error {
	resp := &registryv1.UploadBlobResponse{Upload: uploadToPB(u)}
	if u.State == UploadComplete {
		b, err := s.store.StatBlob(ctx, u.Digest)
		if err != nil {
			return toStatus(err)
		}
		resp.Blob = blobToPB(b)
	}
	return stream.SendAndClose(resp)
}

// GetUploadStatus implements RegistryService.
func (s *Server) GetUploadStatus(ctx context.Context, req *registryv1.GetUploadStatusRequest) (*registryv1.GetUploadStatusResponse, error) {
	u, err := s.store.UploadStatus(ctx, req.GetUploadId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &registryv1.GetUploadStatusResponse{Upload: uploadToPB(u)}, nil
}

// GetBlob implements RegistryService.
func (s *Server) GetBlob(ctx context.Context, req *registryv1.GetBlobRequest) (*registryv1.GetBlobResponse, error) {
	b, err := s.store.StatBlob(ctx, Digest(req.GetSha256()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &registryv1.GetBlobResponse{Blob: blobToPB(b)}, nil
}

// DownloadBlob implements RegistryService: chunks of at most 1 MiB from the
// requested offset; a blob with nothing to send yields one empty chunk so
// that the client learns the size.
func (s *Server) DownloadBlob(req *registryv1.DownloadBlobRequest, stream registryv1.RegistryService_DownloadBlobServer) error {
	ctx := stream.Context()
	rc, size, err := s.store.OpenBlob(ctx, Digest(req.GetSha256()))
	if err != nil {
		return toStatus(err)
	}
	defer rc.Close()
	if req.GetOffset() > uint64(size) {
		return toStatus(fmt.Errorf("download blob %s: offset %d beyond its %d bytes: %w", req.GetSha256(), req.GetOffset(), size, ErrOutOfRange))
	}
	off := int64(req.GetOffset())
	end := size
	if l := req.GetLimit(); l > 0 && l < uint64(size-off) {
		end = off + int64(l)
	}
	if _, err := rc.Seek(off, io.SeekStart); err != nil {
		return toStatus(err)
	}
	for sent := false; off < end || !sent; sent = true {
		if err := ctx.Err(); err != nil {
			return toStatus(err)
		}
		// A fresh buffer per chunk: gRPC may still hold a sent message.
		buf := make([]byte, min(DownloadChunk, end-off))
		n := len(buf)
		if _, err := io.ReadFull(rc, buf); err != nil {
			return toStatus(fmt.Errorf("download blob %s at offset %d: %w", req.GetSha256(), off, err))
		}
		if err := stream.Send(&registryv1.DownloadBlobResponse{Offset: uint64(off), Data: buf, SizeBytes: uint64(size)}); err != nil {
			return err
		}
		off += int64(n)
	}
	return nil
}
