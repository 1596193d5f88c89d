// Package sdk is the Go client of a bitnet mesh: typed clients over the
// generated gRPC stubs of bitnet.registry.v1, bitnet.inference.v1,
// bitnet.quantizer.v1 and bitnet.auth.v1 (Keys), with retries, request IDs
// and helpers for the streaming calls (resumable blob uploads and
// downloads, token streams, job watches). Training jobs have no typed
// client yet: use trainerv1.NewTrainerServiceClient(c.Conn()).
//
//	c, err := sdk.Dial(ctx, "127.0.0.1:50051")
//	if err != nil { ... }
//	defer c.Close()
//	res, err := c.Registry().Push(ctx, "tiny", "model.gguf", nil)  // res.Ref == "tiny@1"
//	s, err := c.Inference().Generate(ctx, &inferencev1.GenerateRequest{Model: "tiny", Prompt: "Hi"})
//	for s.Next() { fmt.Print(s.Text()) }
//	err = s.Err()
//
// Errors from the server keep their gRPC status through any wrapping, so
// callers can branch on status.Code(err). Unary calls are retried on
// UNAVAILABLE and RESOURCE_EXHAUSTED with jittered exponential backoff
// (honouring a server's RetryInfo delay) until the context ends; streams
// are not retried by the interceptor, but Push and Pull resume their
// transfers from the last durable offset after an interruption.
//
// Connections are insecure by default (the mesh's loopback default); use
// WithTLS for anything else (certs.Files{CA: ..., Cert: ..., Key: ...}.Client()
// builds the config, with a client certificate for mTLS). WithAPIKey sends
// an API key on every call; Keys() creates, lists and revokes keys.
package sdk
