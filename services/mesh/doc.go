// Package mesh assembles the mesh's services (registry, quantizer, trainer,
// inference node, router; the router's REST port adds the OpenAI-compatible
// API of package openai) into shared/server instances registered in
// discovery: one service per process for `bitnet serve <service>` (Build),
// or the whole mesh in one process for `bitnet up` (Up).
//
// Every built service registers in discovery under its service name
// (bitnet-registry, bitnet-quantizer, bitnet-trainer, bitnet-inference,
// bitnet-router) with a gRPC health check of its listener, and deregisters
// when shutdown begins (before the drain), so routers stop choosing it at
// once. The quantizer and the trainer read their inputs from the registry
// and register what they make there (directly when it runs in the same
// process, else through its gRPC API). Inference nodes publish their
// hardware and load as router.NodeMeta and fetch models from the registry
// (found by address or as bitnet-registry in discovery) into a local cache,
// verified by sha256, on the first request for a reference.
//
// Access control (Config.Auth, TLS, Limits; package auth): every Service
// has one auth.Guard on its gRPC and REST ports. With Auth, keys are checked
// against a key table: a registry reads its own store, any other service
// syncs from the registry's KeyService with its own credentials (APIKey, or
// its certificate under mTLS), and `up`'s inference node shares the public
// server's table. A registry's first start with Auth creates an admin key
// (AdminKey, else a random one in DATA/admin.key). A listener on a
// non-loopback address needs Auth or mTLS unless Insecure. With TLS, the
// router dials nodes, and services dial the registry, over TLS presenting
// their certificate; discovery health checks use TLS too.
// The REST port of a router (and of Up) also serves the web console
// (package console) at /, unless Config.NoConsole.
//
// Data directory layout (shared by `up` and `serve`):
//
//	DIR/registry/   the registry's store
//	DIR/cache/      inference nodes' model cache (one subdirectory per node)
//	DIR/work/       quantizer job work directories; DIR/work/trainer/ the
//	                trainer's; upload/ and trainer-upload/ their staged
//	                registry uploads (serve with a remote registry)
//	DIR/admin.key   the admin key a registry's first start with --auth created (0600)
package mesh
