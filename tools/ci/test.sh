#!/usr/bin/env bash
# Runs every check CI runs: vet, unit and integration tests with -race on this
# machine, and the arm64 (NEON) tests under qemu-aarch64. Installs what it
# needs (pinned) on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")/../.."

. tools/ci/deps.sh
ensure_qemu

echo "== consul (the discovery and mesh tests start their own dev agents from this binary)"
BITNET_CONSUL_BIN=${BITNET_CONSUL_BIN:-$(tools/ci/consul.sh)}
export BITNET_CONSUL_BIN
# Pinned protobuf toolchain (buf, protoc plugins) on PATH: proto/'s tests run
# buf lint and check that the committed generated code is current.
. tools/proto/install.sh

echo "== SDK and client tools (Debian protoc, grpc_python_plugin, python3-grpcio; npm ci)"
# proto/ checks the Python and TypeScript SDK code is current;
# tools/clientcheck runs the SDK examples and the official openai client
# against a real bitnet up.
. tools/proto/sdk.sh
ensure_sdk_tools
(cd tools/clientcheck/openai-node && npm ci --no-audit --no-fund --silent)
export BITNET_CLIENT_CHECKS=require

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt needed:" $unformatted >&2
	exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race (amd64)"
go test -race -count=1 -timeout 30m ./...

echo "== go vet (arm64: checks the NEON assembly against its Go declarations)"
GOARCH=arm64 go vet ./shared/...

echo "== go test (arm64 under qemu-aarch64)"
# qemu's default CPU ("max") has dotprod: the NEON path runs its SDOT kernels
# (the plain ones are tested directly too).
CGO_ENABLED=0 GOARCH=arm64 go test -count=1 -timeout 30m -exec qemu-aarch64 ./shared/...

echo "== go test (arm64 ARMv8.0, no dotprod: qemu-aarch64 -cpu cortex-a53)"
# Dispatch must pick the plain NEON kernels, which must not use v8.2+ instructions.
CGO_ENABLED=0 GOARCH=arm64 go test -short -count=1 -timeout 10m -exec 'qemu-aarch64 -cpu cortex-a53' \
	./shared/kernels/ ./shared/hardware/

echo "== cross builds (darwin/arm64: metal probe; windows: hardware report)"
GOOS=darwin GOARCH=arm64 go build ./shared/...
GOOS=darwin GOARCH=arm64 go vet ./shared/hardware/ ./shared/metal/ ./shared/kernels/
GOOS=windows GOARCH=amd64 go vet ./shared/hardware/ ./shared/metal/
