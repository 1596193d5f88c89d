// Package clientcheck holds the end-to-end checks of the mesh's clients
// against a real `bitnet up` (its tests build cmd/bitnet and start it on
// free ports): the official openai npm client on the OpenAI-compatible API
// (openai-node/check.mjs), and the examples of the Python and TypeScript
// SDKs (sdk/python, sdk/typescript).
//
// Each check needs its runtime: node with `npm ci` done in openai-node and
// sdk/typescript, and a python3 with grpcio and protobuf (Debian's
// python3-grpcio and python3-protobuf). Without them the checks skip,
// unless BITNET_CLIENT_CHECKS=require (tools/ci/test.sh sets it after
// installing them), when they fail.
package clientcheck
