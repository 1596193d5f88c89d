package registry

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/artifact"
	"github.com/bitnet-mesh/bitnet-mesh/shared/errcode"
)

// ErrorKinds maps the Store's error kinds to gRPC codes, for the registry's
// handlers and for services that relay its errors (artifact.ErrorKinds).
func ErrorKinds() []errcode.Kind { return artifact.ErrorKinds() }

// toStatus maps the Store's error kinds to gRPC status codes, keeping the
// message.
func toStatus(err error) error { return errcode.Status(err, ErrorKinds()...) }

// fromPB converts an API enum with conv; a value without a domain one maps
// to its name, which the Store rejects with its own message.
func fromPB[K ~string, V interface{ String() string }](conv func(V) (K, bool), v V) K {
	k, ok := conv(v)
	if !ok {
		return K(v.String())
	}
	return k
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
		Format:         artifact.FormatToPB(md.Format),
		QuantType:      artifact.QuantToPB(md.QuantType),
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
			Source:        artifact.SourceToPB(l.Source),
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
			Format:         fromPB(artifact.FormatFromPB, req.GetFormat()),
			QuantType:      fromPB(artifact.QuantFromPB, req.GetQuantType()),
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
			Source:        fromPB(artifact.SourceFromPB, l.GetSource()),
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
