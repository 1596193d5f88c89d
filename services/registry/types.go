package registry

import (
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/artifact"
)

// The vocabulary of versions (package artifact's).
type (
	Format        = artifact.Format
	QuantType     = artifact.QuantType
	LineageSource = artifact.LineageSource
	BlobRef       = artifact.BlobRef
	HardwareHints = artifact.HardwareHints
	Lineage       = artifact.Lineage
	Metadata      = artifact.Metadata
	VersionSpec   = artifact.VersionSpec
	Version       = artifact.Version
	BlobInfo      = artifact.BlobInfo
)

// Formats.
const (
	FormatGGUF          = artifact.FormatGGUF
	FormatHFSafetensors = artifact.FormatHFSafetensors
	FormatHFPacked      = artifact.FormatHFPacked
)

// Quant types; "" means not given.
const (
	QuantF32  = artifact.QuantF32
	QuantF16  = artifact.QuantF16
	QuantBF16 = artifact.QuantBF16
	QuantTQ20 = artifact.QuantTQ20
	QuantTQ10 = artifact.QuantTQ10
	QuantI2S  = artifact.QuantI2S
)

// Lineage sources; "" means not given.
const (
	SourceUpload    = artifact.SourceUpload
	SourceQuantizer = artifact.SourceQuantizer
	SourceTrainer   = artifact.SourceTrainer
)

// Model is a named model: its versions are numbered from 1 and its aliases
// point at versions.
type Model struct {
	Name          string
	Description   string
	Labels        map[string]string
	LatestVersion uint32 // 0 when the model has no versions
	VersionCount  uint32
	Aliases       map[string]uint32 // alias -> version
	CreateTime    time.Time
	UpdateTime    time.Time
}

// ModelSpec describes a model to create.
type ModelSpec struct {
	Description string
	Labels      map[string]string
}

// UploadState is the state of a resumable upload.
type UploadState int

// Upload states.
const (
	UploadActive   UploadState = iota + 1 // receiving bytes
	UploadComplete                        // verified and stored
	UploadExpired                         // abandoned; start a new one
)

func (s UploadState) String() string {
	switch s {
	case UploadActive:
		return "active"
	case UploadComplete:
		return "complete"
	case UploadExpired:
		return "expired"
	}
	return "unknown"
}

// Upload is the state of a resumable blob upload.
type Upload struct {
	ID         string // empty when BeginUpload found the blob stored already
	Digest     Digest
	Size       int64
	Offset     int64 // bytes durably received: send from here
	State      UploadState
	CreateTime time.Time
	ExpireTime time.Time // when an inactive upload is abandoned
}

// ListOptions pages through a listing. A zero PageSize means 100; at most
// 1000. PageToken is the previous page's next token.
type ListOptions struct {
	PageSize  int
	PageToken string
	Prefix    string // ListModels only: names starting with Prefix
}

// GCReport says what a garbage collection removed.
type GCReport struct {
	Blobs       []Digest // unreferenced blobs removed
	BytesFreed  int64
	Uploads     []string // expired uploads removed
	OrphanFiles int      // files without a record (crash debris) removed
}
