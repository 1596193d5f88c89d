// Package artifact is the vocabulary of stored models that the registry
// and the services producing and consuming models (quantizer, trainer)
// share: references (NAME, NAME@N, NAME:ALIAS), blob digests, file formats,
// quant types, version metadata and lineage, the registry's error kinds,
// the Source and Sink interfaces a producer needs of a registry, and the
// one table of each enum between the APIs and the domain.
//
// It holds no storage: services/registry implements Source and Sink over
// its Store (Backend) and over its gRPC API (Client).
package artifact
