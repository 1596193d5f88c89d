package trainer

import "github.com/bitnet-mesh/bitnet-mesh/shared/artifact"

// Source is where parents, data sets and tokenizers come from, and Sink is
// where results and checkpoints go: registry.NewBackend over an in-process
// Store, or a gRPC client.
type (
	Source = artifact.Source
	Sink   = artifact.Sink
)
