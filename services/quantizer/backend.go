package quantizer

import "github.com/bitnet-mesh/bitnet-mesh/shared/artifact"

// Source is where checkpoints come from (registry versions and blobs), and
// Sink is where results go: registry.NewBackend over an in-process Store, or
// a gRPC client.
type (
	Source = artifact.Source
	Sink   = artifact.Sink
)
