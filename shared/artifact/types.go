package artifact

import "time"

// Format is the file format of a model version.
type Format string

// Formats.
const (
	FormatGGUF          Format = "gguf"           // a single GGUF file
	FormatHFSafetensors Format = "hf_safetensors" // HF directory, full-precision weights
	FormatHFPacked      Format = "hf_packed"      // HF directory, 2-bit packed ternary weights
)

// QuantType says how the linear weights of a version are stored.
type QuantType string

// Quant types; "" means not given.
const (
	QuantF32  QuantType = "F32"
	QuantF16  QuantType = "F16"
	QuantBF16 QuantType = "BF16"
	QuantTQ20 QuantType = "TQ2_0"
	QuantTQ10 QuantType = "TQ1_0"
	QuantI2S  QuantType = "I2_S"
)

// LineageSource says what produced a version.
type LineageSource string

// Lineage sources; "" means not given.
const (
	SourceUpload    LineageSource = "upload"
	SourceQuantizer LineageSource = "quantizer"
	SourceTrainer   LineageSource = "trainer"
)

// BlobRef is one file of a version: its path inside the version (its role:
// "model.gguf", "config.json", "tokenizer.json", "model.safetensors", ...)
// and the blob holding its bytes.
type BlobRef struct {
	Path      string
	Digest    Digest
	Size      int64 // 0 in a VersionSpec: filled in from the blob
	MediaType string
}

// HardwareHints says what hardware a version needs or prefers.
type HardwareHints struct {
	MinMemoryBytes   uint64
	PreferredKernels []string
	RequiredFeatures []string
}

// Lineage says which job made a version from which parent.
type Lineage struct {
	Source        LineageSource
	JobID         string
	Parent        *Ref   // nil when uploaded or trained from scratch
	DatasetDigest Digest // "" when none
	ConfigJSON    string // "" or valid JSON
	Metrics       map[string]float64
}

// Metadata describes a version's content.
type Metadata struct {
	Architecture   string
	ParameterCount uint64
	Format         Format
	QuantType      QuantType
	ContextLength  uint32
	VocabSize      uint32
	HardwareHints  HardwareHints
	Lineage        Lineage
	Labels         map[string]string
}

// VersionSpec describes a version to create.
type VersionSpec struct {
	Files       []BlobRef // each blob must be stored already
	Description string
	Metadata    Metadata
	Aliases     []string // aliases to point at the new version, in the same transaction
	CreateModel bool     // create the model when it does not exist
}

// Version is one immutable version of a model.
type Version struct {
	Ref         Ref // Name and Version
	Description string
	Files       []BlobRef
	SizeBytes   int64 // sum of the files' sizes
	Metadata    Metadata
	Aliases     []string // aliases pointing at this version, sorted
	CreateTime  time.Time
}

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Digest     Digest
	Size       int64
	RefCount   uint32 // versions referring to it; 0: it will be collected
	CreateTime time.Time
}
