package registry

import (
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/errcode"
)

// ErrorKinds maps the Store's error kinds to gRPC codes, for the registry's
// handlers and for services that relay its errors (a function so that no
// package state can be mutated).
func ErrorKinds() []errcode.Kind {
	return []errcode.Kind{
		{Err: ErrNotFound, Code: codes.NotFound},
		{Err: ErrAlreadyExists, Code: codes.AlreadyExists},
		{Err: ErrInvalid, Code: codes.InvalidArgument},
		{Err: ErrDigestMismatch, Code: codes.DataLoss},
		{Err: ErrFailedPrecondition, Code: codes.FailedPrecondition},
		{Err: ErrTooLarge, Code: codes.ResourceExhausted},
		{Err: ErrNoSpace, Code: codes.ResourceExhausted},
		{Err: ErrOutOfRange, Code: codes.OutOfRange},
		{Err: ErrClosed, Code: codes.Unavailable},
	}
}

// toStatus maps the Store's error kinds to gRPC status codes, keeping the
// message.
func toStatus(err error) error { return errcode.Status(err, ErrorKinds()...) }

// The enum tables are functions so that no package state can be mutated.
func formatToPB() map[Format]modelv1.ModelFormat {
	return map[Format]modelv1.ModelFormat{
		FormatGGUF:          modelv1.ModelFormat_MODEL_FORMAT_GGUF,
		FormatHFSafetensors: modelv1.ModelFormat_MODEL_FORMAT_HF_SAFETENSORS,
		FormatHFPacked:      modelv1.ModelFormat_MODEL_FORMAT_HF_PACKED,
	}
}

func quantToPB() map[QuantType]modelv1.QuantType {
	return map[QuantType]modelv1.QuantType{
		QuantF32:  modelv1.QuantType_QUANT_TYPE_F32,
		QuantF16:  modelv1.QuantType_QUANT_TYPE_F16,
		QuantBF16: modelv1.QuantType_QUANT_TYPE_BF16,
		QuantTQ20: modelv1.QuantType_QUANT_TYPE_TQ2_0,
		QuantTQ10: modelv1.QuantType_QUANT_TYPE_TQ1_0,
		QuantI2S:  modelv1.QuantType_QUANT_TYPE_I2_S,
	}
}

func sourceToPB() map[LineageSource]modelv1.LineageSource {
	return map[LineageSource]modelv1.LineageSource{
		SourceUpload:    modelv1.LineageSource_LINEAGE_SOURCE_UPLOAD,
		SourceQuantizer: modelv1.LineageSource_LINEAGE_SOURCE_QUANTIZER,
		SourceTrainer:   modelv1.LineageSource_LINEAGE_SOURCE_TRAINER,
	}
}

// fromPB inverts one of the maps above; an unknown value maps to a string
// the Store rejects with its own message.
func fromPB[K comparable, V comparable](m map[K]V, v V, zero V, unknown K) K {
	var none K
	if v == zero {
		return none
	}
	for k, x := range m {
		if x == v {
			return k
		}
	}
	return unknown
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func modelToPB(m Model) *registryv1.Model {
	return &registryv1.Model{
		Name:          m.Name,
		Description:   m.Description,
		Labels:        m.Labels,
		LatestVersion: m.LatestVersion,
		VersionCount:  m.VersionCount,
		Aliases:       m.Aliases,
		CreateTime:    ts(m.CreateTime),
		UpdateTime:    ts(m.UpdateTime),
	}
}

func refToPB(r Ref) *modelv1.ModelRef {
	return &modelv1.ModelRef{Name: r.Name, Version: r.Version, Alias: r.Alias}
}

func versionToPB(v Version) *registryv1.ModelVersion {
	md := v.Metadata
	out := &registryv1.ModelVersion{
		Ref:            refToPB(v.Ref),
		Aliases:        v.Aliases,
		Description:    v.Description,
		Architecture:   md.Architecture,
		ParameterCount: md.ParameterCount,
		Format:         formatToPB()[md.Format],
		QuantType:      quantToPB()[md.QuantType],
		SizeBytes:      uint64(v.SizeBytes),
		ContextLength:  md.ContextLength,
		VocabSize:      md.VocabSize,
		Labels:         md.Labels,
		CreateTime:     ts(v.CreateTime),
		HardwareHints: &modelv1.HardwareHints{
			MinMemoryBytes:   md.HardwareHints.MinMemoryBytes,
			PreferredKernels: md.HardwareHints.PreferredKernels,
			RequiredFeatures: md.HardwareHints.RequiredFeatures,
		},
	}
	for _, f := range v.Files {
		out.Files = append(out.Files, &registryv1.VersionFile{
			Path: f.Path, Sha256: f.Digest.Hex(), SizeBytes: uint64(f.Size), MediaType: f.MediaType,
		})
	}
	l := md.Lineage
	if l.Source != "" || l.JobID != "" || l.Parent != nil || l.DatasetDigest != "" || l.ConfigJSON != "" || len(l.Metrics) > 0 {
		out.Lineage = &modelv1.Lineage{
			Source:        sourceToPB()[l.Source],
			JobId:         l.JobID,
			DatasetSha256: l.DatasetDigest.Hex(),
			ConfigJson:    l.ConfigJSON,
			Metrics:       l.Metrics,
		}
		if l.Parent != nil {
			out.Lineage.Parent = refToPB(*l.Parent)
		}
	}
	return out
}

func versionSpecFromPB(req *registryv1.CreateVersionRequest) VersionSpec {
	spec := VersionSpec{
		Description: req.GetDescription(),
		Aliases:     req.GetAliases(),
		CreateModel: req.GetCreateModel(),
		Metadata: Metadata{
			Architecture:   req.GetArchitecture(),
			ParameterCount: req.GetParameterCount(),
			Format:         fromPB(formatToPB(), req.GetFormat(), modelv1.ModelFormat_MODEL_FORMAT_UNSPECIFIED, Format(req.GetFormat().String())),
			QuantType:      fromPB(quantToPB(), req.GetQuantType(), modelv1.QuantType_QUANT_TYPE_UNSPECIFIED, QuantType(req.GetQuantType().String())),
			ContextLength:  req.GetContextLength(),
			VocabSize:      req.GetVocabSize(),
			Labels:         req.GetLabels(),
		},
	}
	if h := req.GetHardwareHints(); h != nil {
		spec.Metadata.HardwareHints = HardwareHints{
			MinMemoryBytes:   h.GetMinMemoryBytes(),
			PreferredKernels: h.GetPreferredKernels(),
			RequiredFeatures: h.GetRequiredFeatures(),
		}
	}
	if l := req.GetLineage(); l != nil {
		spec.Metadata.Lineage = Lineage{
			Source:        fromPB(sourceToPB(), l.GetSource(), modelv1.LineageSource_LINEAGE_SOURCE_UNSPECIFIED, LineageSource(l.GetSource().String())),
			JobID:         l.GetJobId(),
			DatasetDigest: Digest(l.GetDatasetSha256()),
			ConfigJSON:    l.GetConfigJson(),
			Metrics:       l.GetMetrics(),
		}
		if p := l.GetParent(); p != nil {
			spec.Metadata.Lineage.Parent = &Ref{Name: p.GetName(), Version: p.GetVersion(), Alias: p.GetAlias()}
		}
	}
	for _, f := range req.GetFiles() {
		size := int64(f.GetSizeBytes())
		if size < 0 {
			size = -1 // rejected by the Store
		}
		spec.Files = append(spec.Files, BlobRef{Path: f.GetPath(), Digest: Digest(f.GetSha256()), Size: size, MediaType: f.GetMediaType()})
	}
	return spec
}

func uploadToPB(u Upload) *registryv1.Upload {
	state := map[UploadState]registryv1.UploadState{
		UploadActive:   registryv1.UploadState_UPLOAD_STATE_ACTIVE,
		UploadComplete: registryv1.UploadState_UPLOAD_STATE_COMPLETE,
		UploadExpired:  registryv1.UploadState_UPLOAD_STATE_EXPIRED,
	}[u.State]
	out := &registryv1.Upload{
		UploadId:   u.ID,
		Sha256:     u.Digest.Hex(),
		SizeBytes:  uint64(u.Size),
		Offset:     uint64(u.Offset),
		State:      state,
		CreateTime: ts(u.CreateTime),
	}
	if u.State != UploadComplete {
		out.ExpireTime = ts(u.ExpireTime)
	}
	return out
}

func blobToPB(b BlobInfo) *registryv1.Blob {
	return &registryv1.Blob{Sha256: b.Digest.Hex(), SizeBytes: uint64(b.Size), RefCount: b.RefCount, CreateTime: ts(b.CreateTime)}
}
