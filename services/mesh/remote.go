package mesh

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"fmt"
	"io"
	"os"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
)

// remoteBackend is the quantizer's Source and Sink over the registry's gRPC
// API, for a quantizer running apart from the registry.
type remoteBackend struct {
	conn    *regConn
	tempDir string // where PutBlob spools results before uploading them
}

// Enum tables between the API and the registry's domain types; functions so
// that no package state can be mutated.
func formats() map[modelv1.ModelFormat]registry.Format {
	return map[modelv1.ModelFormat]registry.Format{
		modelv1.ModelFormat_MODEL_FORMAT_GGUF:           registry.FormatGGUF,
		modelv1.ModelFormat_MODEL_FORMAT_HF_SAFETENSORS: registry.FormatHFSafetensors,
		modelv1.ModelFormat_MODEL_FORMAT_HF_PACKED:      registry.FormatHFPacked,
	}
}

func quants() map[modelv1.QuantType]registry.QuantType {
	return map[modelv1.QuantType]registry.QuantType{
		modelv1.QuantType_QUANT_TYPE_F32:   registry.QuantF32,
		modelv1.QuantType_QUANT_TYPE_F16:   registry.QuantF16,
		modelv1.QuantType_QUANT_TYPE_BF16:  registry.QuantBF16,
		modelv1.QuantType_QUANT_TYPE_TQ2_0: registry.QuantTQ20,
		modelv1.QuantType_QUANT_TYPE_TQ1_0: registry.QuantTQ10,
		modelv1.QuantType_QUANT_TYPE_I2_S:  registry.QuantI2S,
	}
}

func sources() map[modelv1.LineageSource]registry.LineageSource {
	return map[modelv1.LineageSource]registry.LineageSource{
		modelv1.LineageSource_LINEAGE_SOURCE_UPLOAD:    registry.SourceUpload,
		modelv1.LineageSource_LINEAGE_SOURCE_QUANTIZER: registry.SourceQuantizer,
		modelv1.LineageSource_LINEAGE_SOURCE_TRAINER:   registry.SourceTrainer,
	}
}

// invert returns the pb value of d in m (the zero value when absent).
func invert[K, V comparable](m map[K]V, d V) K {
	for k, v := range m {
		if v == d {
			return k
		}
	}
	var zero K
	return zero
}

func versionFromPB(v *registryv1.ModelVersion) (registry.Version, error) {
	out := registry.Version{
		Ref:         registry.Ref{Name: v.GetRef().GetName(), Version: v.GetRef().GetVersion()},
		Description: v.GetDescription(),
		SizeBytes:   int64(v.GetSizeBytes()),
		Aliases:     v.GetAliases(),
		CreateTime:  v.GetCreateTime().AsTime(),
		Metadata: registry.Metadata{
			Architecture:   v.GetArchitecture(),
			ParameterCount: v.GetParameterCount(),
			Format:         formats()[v.GetFormat()],
			QuantType:      quants()[v.GetQuantType()],
			ContextLength:  v.GetContextLength(),
			VocabSize:      v.GetVocabSize(),
			Labels:         v.GetLabels(),
		},
	}
	for _, f := range v.GetFiles() {
		d, err := registry.ParseDigest(f.GetSha256())
		if err != nil {
			return registry.Version{}, fmt.Errorf("version %s file %q: %w", v.GetRef().Text(), f.GetPath(), err)
		}
		out.Files = append(out.Files, registry.BlobRef{Path: f.GetPath(), Digest: d, Size: int64(f.GetSizeBytes()), MediaType: f.GetMediaType()})
	}
	return out, nil
}

func (b *remoteBackend) Resolve(ctx context.Context, ref string) (registry.Version, error) {
	c, err := b.conn.client(ctx)
	if err != nil {
		return registry.Version{}, err
	}
	v, err := c.Resolve(ctx, ref)
	if err != nil {
		return registry.Version{}, relay(err)
	}
	return versionFromPB(v)
}

func (b *remoteBackend) OpenBlob(ctx context.Context, d registry.Digest) (io.ReadCloser, int64, error) {
	c, err := b.conn.client(ctx)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.RPC().GetBlob(ctx, &registryv1.GetBlobRequest{Sha256: d.Hex()})
	if err != nil {
		return nil, 0, fmt.Errorf("blob %s: %w", d, relay(err))
	}
	sctx, cancel := context.WithCancel(ctx)
	stream, err := c.RPC().DownloadBlob(sctx, &registryv1.DownloadBlobRequest{Sha256: d.Hex()})
	if err != nil {
		cancel()
		return nil, 0, fmt.Errorf("download blob %s: %w", d, relay(err))
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

// PutBlob spools r to a temporary file (the upload needs the digest first,
// and resumes from the file after an interruption), then uploads it.
func (b *remoteBackend) PutBlob(ctx context.Context, r io.Reader, want registry.Digest) (registry.BlobInfo, error) {
	c, err := b.conn.client(ctx)
	if err != nil {
		return registry.BlobInfo{}, err
	}
	if err := os.MkdirAll(b.tempDir, 0o755); err != nil {
		return registry.BlobInfo{}, fmt.Errorf("put blob: %w", err)
	}
	f, err := os.CreateTemp(b.tempDir, "put-*")
	if err != nil {
		return registry.BlobInfo{}, fmt.Errorf("put blob: %w", err)
	}
	defer os.Remove(f.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return registry.BlobInfo{}, fmt.Errorf("put blob: spool: %w", err)
	}
	got := registry.Digest("sha256:" + hex.EncodeToString(h.Sum(nil)))
	if want != "" && want != got {
		return registry.BlobInfo{}, fmt.Errorf("put blob: got %s, want %s: %w", got, want, registry.ErrDigestMismatch)
	}
	lm := &sdk.LocalModel{Files: []*sdk.LocalFile{{Path: "blob", Local: f.Name(), Size: n}}}
	if _, err := c.Upload(ctx, lm, nil); err != nil {
		return registry.BlobInfo{}, fmt.Errorf("put blob %s: %w", got, relay(err))
	}
	return registry.BlobInfo{Digest: got, Size: n}, nil
}

func (b *remoteBackend) CreateVersion(ctx context.Context, name string, spec registry.VersionSpec) (registry.Version, error) {
	c, err := b.conn.client(ctx)
	if err != nil {
		return registry.Version{}, err
	}
	md := spec.Metadata
	req := &registryv1.CreateVersionRequest{
		Name:           name,
		CreateModel:    spec.CreateModel,
		Description:    spec.Description,
		Aliases:        spec.Aliases,
		Architecture:   md.Architecture,
		ParameterCount: md.ParameterCount,
		Format:         invert(formats(), md.Format),
		QuantType:      invert(quants(), md.QuantType),
		ContextLength:  md.ContextLength,
		VocabSize:      md.VocabSize,
		Labels:         md.Labels,
		HardwareHints: &modelv1.HardwareHints{
			MinMemoryBytes:   md.HardwareHints.MinMemoryBytes,
			PreferredKernels: md.HardwareHints.PreferredKernels,
			RequiredFeatures: md.HardwareHints.RequiredFeatures,
		},
		Lineage: &modelv1.Lineage{
			Source:        invert(sources(), md.Lineage.Source),
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
		return registry.Version{}, fmt.Errorf("create version of %s: %w", name, relay(err))
	}
	return versionFromPB(resp.GetVersion())
}
