package sdk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
)

// Upload chunk sizes: the API allows at most 1 MiB per message.
const (
	DefaultChunkSize = 1 << 20
	MaxChunkSize     = 1 << 20
)

// PushOptions are the optional parts of Push and Upload.
type PushOptions struct {
	Progress    ProgressFunc
	Aliases     []string          // aliases to point at the new version
	Description string            // the version's description
	Labels      map[string]string // the version's labels
	ChunkSize   int               // bytes per upload message; 0 means DefaultChunkSize
	// AllFiles pushes every file of a directory, not only the model's
	// (see Inspect).
	AllFiles bool

	open func(string) (io.ReadSeekCloser, error) // tests inject failing readers
}

func (o *PushOptions) chunk() int {
	if o == nil || o.ChunkSize <= 0 {
		return DefaultChunkSize
	}
	return min(o.ChunkSize, MaxChunkSize)
}

func (o *PushOptions) opener() func(string) (io.ReadSeekCloser, error) {
	if o != nil && o.open != nil {
		return o.open
	}
	return func(p string) (io.ReadSeekCloser, error) { return os.Open(p) }
}

func (o *PushOptions) progress() ProgressFunc {
	if o == nil {
		return nil
	}
	return o.Progress
}

// PushResult is what Push did.
type PushResult struct {
	Ref          string // the new version, NAME@N
	Version      *registryv1.ModelVersion
	BytesSent    int64 // blob bytes sent over the network
	BytesSkipped int64 // blob bytes the registry had already (stored or received before an interruption)
	// LeftOut are the directory's files that are not the model's and were
	// not pushed (PushOptions.AllFiles pushes them).
	LeftOut []string
}

// UploadResult is what Upload did.
type UploadResult struct {
	Files        []*registryv1.VersionFile
	BytesSent    int64
	BytesSkipped int64
}

// Push uploads a local model (a GGUF file or a Hugging Face directory, see
// Inspect) as the next version of model name, creating the model when
// needed. Blobs the registry has are not sent again, and an upload
// interrupted earlier (by this or another process) resumes where the
// registry's durable offset is.
func (r *RegistryClient) Push(ctx context.Context, name, localPath string, o *PushOptions) (*PushResult, error) {
	op := fmt.Sprintf("push %s as %q", localPath, name)
	if err := modelv1.CheckName(name); err != nil {
		return nil, invalidArgument(op, err)
	}
	for _, a := range pushAliases(o) {
		if err := modelv1.CheckAlias(a); err != nil {
			return nil, invalidArgument(op, err)
		}
	}
	var iopts []InspectOption
	if o != nil && o.AllFiles {
		iopts = append(iopts, AllFiles())
	}
	lm, err := Inspect(localPath, iopts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	up, err := r.Upload(ctx, lm, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	req := &registryv1.CreateVersionRequest{
		Name:           name,
		CreateModel:    true,
		Architecture:   lm.Architecture,
		ParameterCount: lm.ParameterCount,
		Format:         lm.Format,
		QuantType:      lm.QuantType,
		Files:          up.Files,
		ContextLength:  lm.ContextLength,
		VocabSize:      lm.VocabSize,
		Lineage:        &modelv1.Lineage{Source: modelv1.LineageSource_LINEAGE_SOURCE_UPLOAD},
		Aliases:        pushAliases(o),
	}
	if o != nil {
		req.Description, req.Labels = o.Description, o.Labels
	}
	resp, err := r.rpc.CreateVersion(ctx, req)
	if err != nil {
		return nil, wrap(op, err)
	}
	v := resp.GetVersion()
	return &PushResult{Ref: v.GetRef().Text(), Version: v, BytesSent: up.BytesSent, BytesSkipped: up.BytesSkipped, LeftOut: lm.Skipped}, nil
}

func pushAliases(o *PushOptions) []string {
	if o == nil {
		return nil
	}
	return o.Aliases
}

// Upload hashes and uploads the files of lm as blobs (filling in their
// SHA256) without creating a version, e.g. as a quantizer job's source.
func (r *RegistryClient) Upload(ctx context.Context, lm *LocalModel, o *PushOptions) (*UploadResult, error) {
	res := &UploadResult{}
	for _, f := range lm.Files {
		if err := hashFile(ctx, f, o); err != nil {
			return nil, err
		}
		sent, skipped, err := r.uploadFile(ctx, f, o)
		res.BytesSent += sent
		res.BytesSkipped += skipped
		if err != nil {
			return res, err
		}
		res.Files = append(res.Files, &registryv1.VersionFile{Path: f.Path, Sha256: f.SHA256, SizeBytes: uint64(f.Size), MediaType: f.MediaType})
	}
	return res, nil
}

func hashFile(ctx context.Context, f *LocalFile, o *PushOptions) error {
	rc, err := o.opener()(f.Local)
	if err != nil {
		return fmt.Errorf("hash %s: %w", f.Local, err)
	}
	defer rc.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("hash %s: %w", f.Local, err)
		}
		k, err := rc.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("hash %s: %w", f.Local, err)
		}
		o.progress().report(Progress{Op: OpHash, File: f.Path, Done: n, Total: f.Size})
	}
	if n != f.Size {
		return fmt.Errorf("hash %s: read %d bytes, but it had %d: changed while pushing", f.Local, n, f.Size)
	}
	f.SHA256 = hex.EncodeToString(h.Sum(nil))
	return nil
}

// resumable reports whether a failed blob stream can continue from the
// registry's offset: the connection or the server gave out, or the offsets
// disagreed. Errors of this side (reading or writing local files) carry no
// status and are final.
func resumable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.FailedPrecondition, codes.Internal:
		return true
	}
	return false
}

// uploadFile sends one blob unless the registry has it, resuming from the
// registry's offset after a failed stream. It returns the bytes sent and
// the bytes that did not need sending.
func (r *RegistryClient) uploadFile(ctx context.Context, f *LocalFile, o *PushOptions) (sent, skipped int64, err error) {
	op := fmt.Sprintf("upload %s", f.Path)
	prog := o.progress()
	var up *registryv1.Upload
	first := true
	err = r.c.retry.retryLoop(ctx, resumable, func() error {
		var err error
		up, err = r.uploadState(ctx, f, up)
		if err != nil {
			return err
		}
		if first {
			skipped = int64(up.GetOffset())
			first = false
		}
		if up.GetState() == registryv1.UploadState_UPLOAD_STATE_COMPLETE {
			return nil
		}
		n, err := r.sendFrom(ctx, f, up, o)
		sent += n
		if err != nil {
			return err
		}
		up.State = registryv1.UploadState_UPLOAD_STATE_COMPLETE
		return nil
	})
	if err == nil {
		// Whatever this call did not send, the registry had: stored, or received
		// from an earlier interrupted stream (possibly after our first look).
		skipped = f.Size - sent
		if up.GetState() == registryv1.UploadState_UPLOAD_STATE_COMPLETE && sent == 0 {
			prog.report(Progress{Op: OpUpload, File: f.Path, Done: f.Size, Total: f.Size, Skipped: true})
		}
	}
	return sent, skipped, wrap(op, err)
}

// uploadState returns the upload to send into: the current state of prev
// (GetUploadStatus), or a new or existing one from CreateUpload when there
// is no previous upload or it expired.
func (r *RegistryClient) uploadState(ctx context.Context, f *LocalFile, prev *registryv1.Upload) (*registryv1.Upload, error) {
	if prev != nil && prev.GetUploadId() != "" {
		resp, err := r.rpc.GetUploadStatus(ctx, &registryv1.GetUploadStatusRequest{UploadId: prev.GetUploadId()})
		switch {
		case err == nil && resp.GetUpload().GetState() != registryv1.UploadState_UPLOAD_STATE_EXPIRED:
			return resp.GetUpload(), nil
		case err != nil && status.Code(err) != codes.NotFound:
			return nil, err
		}
	}
	resp, err := r.rpc.CreateUpload(ctx, &registryv1.CreateUploadRequest{Sha256: f.SHA256, SizeBytes: uint64(f.Size)})
	if err != nil {
		return nil, err
	}
	return resp.GetUpload(), nil
}

// sendFrom streams the file from the upload's offset. When reading the
// local file fails, it closes the stream cleanly first so that the
// registry keeps every byte it received.
func (r *RegistryClient) sendFrom(ctx context.Context, f *LocalFile, up *registryv1.Upload, o *PushOptions) (int64, error) {
	prog := o.progress()
	off := int64(up.GetOffset())
	rc, err := o.opener()(f.Local)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", f.Local, err)
	}
	defer rc.Close()
	if _, err := rc.Seek(off, io.SeekStart); err != nil {
		return 0, fmt.Errorf("seek %s to %d: %w", f.Local, off, err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := r.rpc.UploadBlob(sctx)
	if err != nil {
		return 0, err
	}
	hdr := &registryv1.UploadBlobRequest{Content: &registryv1.UploadBlobRequest_Header{Header: &registryv1.UploadBlobHeader{UploadId: up.GetUploadId(), Offset: uint64(off)}}}
	if err := stream.Send(hdr); err != nil {
		_, err = stream.CloseAndRecv() // the real error
		return 0, err
	}
	buf := make([]byte, o.chunk())
	var sent int64
	prog.report(Progress{Op: OpUpload, File: f.Path, Done: off, Total: f.Size})
	for off+sent < f.Size {
		n, rerr := io.ReadFull(rc, buf[:min(int64(len(buf)), f.Size-off-sent)])
		if n > 0 {
			msg := &registryv1.UploadBlobRequest{Content: &registryv1.UploadBlobRequest_Chunk{Chunk: buf[:n]}}
			if err := stream.Send(msg); err != nil {
				_, err = stream.CloseAndRecv()
				return sent, err
			}
			sent += int64(n)
			prog.report(Progress{Op: OpUpload, File: f.Path, Done: off + sent, Total: f.Size})
		}
		if rerr != nil {
			_, _ = stream.CloseAndRecv() // the registry keeps what it got
			return sent, fmt.Errorf("read %s at offset %d: %w", f.Local, off+sent, rerr)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return sent, err
	}
	if resp.GetUpload().GetState() == registryv1.UploadState_UPLOAD_STATE_COMPLETE {
		return sent, nil
	}
	return sent, status.Errorf(codes.Aborted, "upload %s ended at offset %d of %d", up.GetUploadId(), resp.GetUpload().GetOffset(), f.Size)
}
