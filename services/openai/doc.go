// Package openai serves the OpenAI HTTP API on the mesh's REST port, so
// that clients written for OpenAI (the openai SDKs, LangChain, LiteLLM,
// Open WebUI, editors' assistants) work with base_url http://HOST:PORT/v1.
// It is a front over the bitnet.inference.v1 API: every request becomes a
// call of the router's Generate (or ListModels) over the server's own gRPC
// connection, so it gets the same routing, batching, failover, deadlines,
// metrics, request IDs and authentication as native calls. A client that
// closes its connection cancels the call at once, and with it the
// generation on the node.
//
// Routes:
//
//	GET  /v1/models             the servable models: every registry model as
//	                            NAME, NAME@N for each version and NAME:ALIAS
//	GET  /v1/models/{id}        one of them; 404 model_not_found otherwise
//	POST /v1/chat/completions   chats, rendered with the model's own template
//	POST /v1/completions        prompts (text or token IDs)
//	POST /v1/embeddings         embedding models (the Embed RPC); a causal
//	                            LM is a 400 model_not_supported
//
// Parameters follow the OpenAI API reference: messages (system, developer,
// user, assistant; string or text-part content), max_tokens and
// max_completion_tokens (default: until the context is full; 16 for
// completions), temperature (default 1), top_p, stop (string or list), seed,
// n (only 1), presence_penalty, frequency_penalty, logprobs and
// top_logprobs (up to 20; completions: logprobs 0 to 5), stream with
// stream_options.include_usage, echo (completions; not with logprobs),
// user, and response_format text, json_object or json_schema (constrained
// decoding: the output always parses and validates; see
// shared/constrained for the supported schema subset; stop cannot be
// combined with it). vLLM's extra parameters top_k, min_p,
// repetition_penalty and chat_template_kwargs are accepted too. Tools,
// logit_bias, suffix, best_of > 1 and non-text content are a 400 naming the
// parameter. Unknown fields are ignored, as vLLM does.
//
// Mesh extensions that OpenAI clients pass through untouched: a request
// field "bitnet": {"require": ["avx512"], "prefer_kernel": "avx2"} sets the
// hardware constraints; responses name the serving node and kernel in the
// x-bitnet-node and x-bitnet-kernel headers, and non-streamed bodies carry
// "bitnet": {"node", "kernel", "model", "timings"}.
//
// finish_reason is "stop" (end of turn, a stop string, or the structured
// output closed) or "length" (max_tokens, the context, or max_tokens forced
// a structured output to close early: it still parses and validates).
// usage counts the prompt's tokens after the template and the tokens
// generated (the end token that stopped generation is not counted).
//
// Errors have OpenAI's shape, {"error": {"message", "type", "param",
// "code"}}, with the HTTP status of the gRPC code: 400 invalid arguments,
// 401 and 403 from authentication, 404 model_not_found, 429 with
// Retry-After when a node's queue is full or a rate limit is hit, 503 when
// no node can serve, 504 on deadlines. A stream that fails after its first
// chunk ends with a data: {"error": ...} event.
//
// Authentication: with API keys on (`bitnet up --auth`, shared/auth), the
// Authorization header travels as metadata to the gRPC calls the front
// makes, whose interceptors check the key and its scope (generate for
// Generate and Embed, read for the registry's listing), its rate, stream
// and token limits, and charge the tokens a stream sends: one check per
// request, with the errors turned into OpenAI's 401 (WWW-Authenticate),
// 403 and 429 (Retry-After). WithAuthorizer adds an optional check at the
// HTTP layer with scopes "generate" (completions, chat, embeddings) and
// "read" (models).
package openai
