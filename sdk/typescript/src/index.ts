// bitnet-mesh TypeScript SDK: the generated messages and services (./gen)
// and a thin client.
export { Client, MeshError, type ChatMessage, type ClientOptions, type GenerateParams, type Progress, type ProgressFunc } from "./client.js";
export * from "./gen/bitnet/inference/v1/inference_pb.js";
export { Code } from "@connectrpc/connect";
