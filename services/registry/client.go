package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"fmt"
	"io"
	"os"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
	"github.com/bitnet-mesh/bitnet-mesh/shared/artifact"
	"google.golang.org/grpc/status"
)

// Client is a registry's Source and Sink over its gRPC API, for the
// services (quantizer, trainer) running apart from the registry; Backend is
// the same over an in-process Store.
type Client struct {
	dial    func(ctx context.Context) (*sdk.RegistryClient, error)
	tempDir string // where PutBlob spools results before uploading them
}

// NewClient returns a Client calling the registry dial returns (per call,
// so that a registry that moved is found again); PutBlob spools blobs in
// tempDir.
func NewClient(dial func(ctx context.Context) (*sdk.RegistryClient, error), tempDir string) *Client {
	return &Client{dial: dial, tempDir: tempDir}
}

func clientVersionFromPB(v *registryv1.ModelVersion) (Version, error) {
	out := Version{
		Ref:         Ref{Name: v.GetRef().GetName(), Version: v.GetRef().GetVersion()},
		Description: v.GetDescription(),
		SizeBytes:   int64(v.GetSizeBytes()),
		Aliases:     v.GetAliases(),
		CreateTime:  v.GetCreateTime().AsTime(),
		Metadata: Metadata{
			Architecture:   v.GetArchitecture(),
			ParameterCount: v.GetParameterCount(),
			Format:         fromPBOrZero(artifact.FormatFromPB, v.GetFormat()),
			QuantType:      fromPBOrZero(artifact.QuantFromPB, v.GetQuantType()),
			ContextLength:  v.GetContextLength(),
			VocabSize:      v.GetVocabSize(),
			Labels:         v.GetLabels(),
		},
	}
	for _, f := range v.GetFiles() {
		d, err := ParseDigest(f.GetSha256())
		if err != nil {
			return Version{}, fmt.Errorf("version %s file %q: %w", v.GetRef().Text(), f.GetPath(), err)
		}
		out.Files = append(out.Files, BlobRef{Path: f.GetPath(), Digest: d, Size: int64(f.GetSizeBytes()), MediaType: f.GetMediaType()})
	}
	return out, nil
}

// Resolve implements Source.
func (b *Client) Resolve(ctx context.Context, ref string) (Version, error) {
	c, err := b.dial(ctx)
	if err != nil {
		return Version{}, err
	}
	v, err := c.Resolve(ctx, ref)
	if err != nil {
		return Version{}, Relay(err)
	}
	return clientVersionFromPB(v)
}

// OpenBlob implements Source.
func (b *Client) OpenBlob(ctx context.Context, d Digest) (io.ReadCloser, int64, error) {
	c, err := b.dial(ctx)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.RPC().GetBlob(ctx, &registryv1.GetBlobRequest{Sha256: d.Hex()})
	if err != nil {
		return nil, 0, fmt.Errorf("blob %s: %w", d, Relay(err))
	}
	sctx, cancel := context.WithCancel(ctx)
	stream, err := c.RPC().DownloadBlob(sctx, &registryv1.DownloadBlobRequest{Sha256: d.Hex()})
	if err != nil {
		cancel()
		return nil, 0, fmt.Errorf("download blob %s: %w", d, Relay(err))
	}
	return &blobReader{stream: stream, cancel: cancel}, int64(resp.GetBlob().GetSizeBytes()), nil
}

// blobReader reads a DownloadBlob stream.
type blobReader struct {
	stream registryv1.RegistryService_DownloadBlobClient
	cancel context.CancelFunc
	buf    []byte
}

func (r *blobReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		msg, err := r.stream.Recv()
		if err != nil {
			return 0, err // io.EOF at the end
		}
		r.buf = msg.GetData()
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *blobReader) Close() error { r.cancel(); return nil }

// PutBlob implements Sink: it spools r to a temporary file (the upload
// needs the digest first, and resumes from the file after an
// interruption), then uploads it.
func (b *Client) PutBlob(ctx context.Context, r io.Reader, want Digest) (BlobInfo, error) {
	c, err := b.dial(ctx)
	if err != nil {
		return BlobInfo{}, err
	}
	if err := os.MkdirAll(b.tempDir, 0o755); err != nil {
		return BlobInfo{}, fmt.Errorf("put blob: %w", err)
	}
	f, err := os.CreateTemp(b.tempDir, "put-*")
	if err != nil {
		return BlobInfo{}, fmt.Errorf("put blob: %w", err)
	}
	defer os.Remove(f.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return BlobInfo{}, fmt.Errorf("put blob: spool: %w", err)
	}
	got := Digest("sha256:" + hex.EncodeToString(h.Sum(nil)))
	if want != "" && want != got {
		return BlobInfo{}, fmt.Errorf("put blob: got %s, want %s: %w", got, want, ErrDigestMismatch)
	}
	lm := &sdk.LocalModel{Files: []*sdk.LocalFile{{Path: "blob", Local: f.Name(), Size: n}}}
	if _, err := c.Upload(ctx, lm, nil); err != nil {
		return BlobInfo{}, fmt.Errorf("put blob %s: %w", got, Relay(err))
	}
	return BlobInfo{Digest: got, Size: n}, nil
}

// CreateVersion implements Sink.
func (b *Client) CreateVersion(ctx context.Context, name string, spec VersionSpec) (Version, error) {
	c, err := b.dial(ctx)
	if err != nil {
		return Version{}, err
	}
	md := spec.Metadata
	req := &registryv1.CreateVersionRequest{
		Name:           name,
		CreateModel:    spec.CreateModel,
		Description:    spec.Description,
		Aliases:        spec.Aliases,
		Architecture:   md.Architecture,
		ParameterCount: md.ParameterCount,
		Format:         artifact.FormatToPB(md.Format),
		QuantType:      artifact.QuantToPB(md.QuantType),
		ContextLength:  md.ContextLength,
		VocabSize:      md.VocabSize,
		Labels:         md.Labels,
		HardwareHints: &modelv1.HardwareHints{
			MinMemoryBytes:   md.HardwareHints.MinMemoryBytes,
			PreferredKernels: md.HardwareHints.PreferredKernels,
			RequiredFeatures: md.HardwareHints.RequiredFeatures,
		},
		Lineage: &modelv1.Lineage{
			Source:        artifact.SourceToPB(md.Lineage.Source),
			JobId:         md.Lineage.JobID,
			DatasetSha256: md.Lineage.DatasetDigest.Hex(),
			ConfigJson:    md.Lineage.ConfigJSON,
			Metrics:       md.Lineage.Metrics,
		},
	}
	if p := md.Lineage.Parent; p != nil {
		req.Lineage.Parent = &modelv1.ModelRef{Name: p.Name, Version: p.Version, Alias: p.Alias}
	}
	for _, f := range spec.Files {
		req.Files = append(req.Files, &registryv1.VersionFile{Path: f.Path, Sha256: f.Digest.Hex(), SizeBytes: uint64(max(f.Size, 0)), MediaType: f.MediaType})
	}
	resp, err := c.RPC().CreateVersion(ctx, req)
	if err != nil {
		return Version{}, fmt.Errorf("create version of %s: %w", name, Relay(err))
	}
	return clientVersionFromPB(resp.GetVersion())
}

// fromPBOrZero converts an API enum with conv, "" for a value this client
// does not know (a newer registry's).
func fromPBOrZero[K ~string, V any](conv func(V) (K, bool), v V) K {
	k, _ := conv(v)
	return k
}

// relayed is a registry error as a service calling the registry passes it
// on: the registry's code and message, without the SDK's "OP: CODE:" text
// (the service's caller adds its own context, and the client its code).
type relayed struct{ st *status.Status }

func (r relayed) Error() string              { return r.st.Message() }
func (r relayed) GRPCStatus() *status.Status { return r.st }

// Relay turns an SDK call error, or the status error of a generated
// client's call, into a relayed one (whose text is the registry's message,
// not "rpc error: code = ... desc = ..."); others pass unchanged.
func Relay(err error) error {
	var se *sdk.Error
	if errors.As(err, &se) {
		return relayed{se.Status}
	}
	if s, ok := err.(interface{ GRPCStatus() *status.Status }); ok && s.GRPCStatus() != nil {
		return relayed{s.GRPCStatus()}
	}
	return err
}
