// Package proto holds the bitnet protobuf APIs and the code generated from
// them; this package itself only carries the test that the committed
// generated code is current.
//
// Layout (a buf v2 workspace, see /buf.yaml and /buf.gen.yaml):
//
//	bitnet/model/v1      shared messages: ModelRef, Hardware, Lineage, Usage, Timings, JobState
//	bitnet/registry/v1   RegistryService: models, versions, aliases, blobs
//	bitnet/quantizer/v1  QuantizerService: quantization jobs and reports
//	bitnet/inference/v1  InferenceService: Generate, Tokenize, models, nodes (nodes and router)
//	bitnet/trainer/v1    TrainerService: training jobs
//	bitnet/auth/v1       KeyService: API keys (served by the registry)
//	openapi              the OpenAPI v2 specs, embedded (package openapi)
//	gateway              REST gateway options: proto field names, NDJSON streams
//
// Next to each .proto are its generated Go messages (*.pb.go), gRPC stubs
// (*_grpc.pb.go) and REST gateway (*.pb.gw.go). After editing a .proto, run
// tools/proto/generate.sh (installs the pinned toolchain, lints, generates)
// and commit the result; TestGeneratedCodeIsCurrent fails otherwise.
package proto
