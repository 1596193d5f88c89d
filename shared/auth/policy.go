package auth

import (
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"

	authv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/auth/v1"
	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
	trainerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/trainer/v1"
)

// Rule is what one RPC needs.
type Rule struct {
	// Open methods need no credentials at all (health checks).
	Open bool
	// Scope the caller's key must grant (unless Open).
	Scope Scope
	// Mutating calls change state: each gets one audit line.
	Mutating bool
}

func read() Rule          { return Rule{Scope: ScopeRead} }
func generate() Rule      { return Rule{Scope: ScopeGenerate} }
func mutate(s Scope) Rule { return Rule{Scope: s, Mutating: true} }

// Policy returns the one table of every RPC the mesh serves, by full method
// name ("/package.Service/Method"), and the rule it needs. A method missing
// from the table is refused when auth is on (TestPolicyCoversEveryRPC
// fails first), so a new RPC cannot be added unprotected. Reflection
// methods need read; reflection can also be turned off per server.
func Policy() map[string]Rule {
	return map[string]Rule{
		// Health: open, so that Consul, kubelet and load balancers can check
		// servers that require keys or client certificates.
		healthpb.Health_Check_FullMethodName: {Open: true},
		healthpb.Health_List_FullMethodName:  {Open: true},
		healthpb.Health_Watch_FullMethodName: {Open: true},

		reflectionv1.ServerReflection_ServerReflectionInfo_FullMethodName:      read(),
		reflectionv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName: read(),

		inferencev1.InferenceService_Generate_FullMethodName:    generate(),
		inferencev1.InferenceService_Tokenize_FullMethodName:    generate(),
		inferencev1.InferenceService_Embed_FullMethodName:       generate(),
		inferencev1.InferenceService_Detokenize_FullMethodName:  generate(),
		inferencev1.InferenceService_ListModels_FullMethodName:  read(),
		inferencev1.InferenceService_ModelStatus_FullMethodName: read(),
		inferencev1.InferenceService_LoadModel_FullMethodName:   mutate(ScopeAdmin),
		inferencev1.InferenceService_UnloadModel_FullMethodName: mutate(ScopeAdmin),
		inferencev1.InferenceService_NodeInfo_FullMethodName:    read(),
		inferencev1.InferenceService_ListNodes_FullMethodName:   read(),

		registryv1.RegistryService_CreateModel_FullMethodName:     mutate(ScopeWrite),
		registryv1.RegistryService_ListModels_FullMethodName:      read(),
		registryv1.RegistryService_GetModel_FullMethodName:        read(),
		registryv1.RegistryService_DeleteModel_FullMethodName:     mutate(ScopeWrite),
		registryv1.RegistryService_CreateVersion_FullMethodName:   mutate(ScopeWrite),
		registryv1.RegistryService_ListVersions_FullMethodName:    read(),
		registryv1.RegistryService_GetVersion_FullMethodName:      read(),
		registryv1.RegistryService_DeleteVersion_FullMethodName:   mutate(ScopeWrite),
		registryv1.RegistryService_SetAlias_FullMethodName:        mutate(ScopeWrite),
		registryv1.RegistryService_DeleteAlias_FullMethodName:     mutate(ScopeWrite),
		registryv1.RegistryService_ResolveModel_FullMethodName:    read(),
		registryv1.RegistryService_CreateUpload_FullMethodName:    mutate(ScopeWrite),
		registryv1.RegistryService_UploadBlob_FullMethodName:      mutate(ScopeWrite),
		registryv1.RegistryService_GetUploadStatus_FullMethodName: {Scope: ScopeWrite},
		registryv1.RegistryService_GetBlob_FullMethodName:         read(),
		registryv1.RegistryService_DownloadBlob_FullMethodName:    read(),

		quantizerv1.QuantizerService_CreateJob_FullMethodName: mutate(ScopeJobs),
		quantizerv1.QuantizerService_GetJob_FullMethodName:    read(),
		quantizerv1.QuantizerService_ListJobs_FullMethodName:  read(),
		quantizerv1.QuantizerService_CancelJob_FullMethodName: mutate(ScopeJobs),
		quantizerv1.QuantizerService_WatchJob_FullMethodName:  read(),

		trainerv1.TrainerService_CreateJob_FullMethodName: mutate(ScopeJobs),
		trainerv1.TrainerService_GetJob_FullMethodName:    read(),
		trainerv1.TrainerService_ListJobs_FullMethodName:  read(),
		trainerv1.TrainerService_CancelJob_FullMethodName: mutate(ScopeJobs),
		trainerv1.TrainerService_WatchJob_FullMethodName:  read(),

		authv1.KeyService_CreateKey_FullMethodName: mutate(ScopeAdmin),
		authv1.KeyService_ListKeys_FullMethodName:  {Scope: ScopeAdmin},
		authv1.KeyService_RevokeKey_FullMethodName: mutate(ScopeAdmin),
		// Services read the verifiers with their own (read) keys; a
		// verifier is a SHA-256 of a 256-bit secret and cannot be used as a
		// key or turned back into one.
		authv1.KeyService_SyncKeys_FullMethodName: read(),
	}
}
