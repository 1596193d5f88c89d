#!/usr/bin/env bash
# Runs every check CI runs: gofmt, vet, go mod tidy -diff, staticcheck, unit
# and integration tests with -race on this machine (the web console's in
# headless Chromium), the arm64 (NEON) tests under qemu-aarch64 and cross
# builds. Installs what it needs (pinned) on a fresh Debian machine and says
# so, runs every step even after a failure, and ends with a summary line
# (packages passed and failed, time taken); exits 1 when anything failed.
set -uo pipefail
cd "$(dirname "$0")/../.."

echo "== tools (installed once when missing, at pinned versions)"
. tools/ci/deps.sh
ensure_qemu || exit 1
echo "qemu-aarch64: $(command -v qemu-aarch64) ($(qemu-aarch64 --version | head -n1))"
# The web console's browser tests (services/console) drive it headless.
ensure_chromium || exit 1
echo "chromium: $(command -v chromium) ($(chromium --version 2>/dev/null))"
ensure_clang || exit 1
echo "clang++-19: $(command -v clang++-19) ($(clang++-19 --version | head -n1); Debian $(dpkg-query -W -f '${Version}' clang-19 2>/dev/null))"
# The Metal kernels' emulated tests must run here, not skip for want of clang.
export BITNET_REQUIRE_EMULATOR=1
# The discovery and mesh tests start their own dev agents from this binary.
BITNET_CONSUL_BIN=${BITNET_CONSUL_BIN:-$(tools/ci/consul.sh)} || exit 1
export BITNET_CONSUL_BIN
echo "consul: $BITNET_CONSUL_BIN ($("$BITNET_CONSUL_BIN" version | head -n1))"
# Pinned protobuf toolchain (buf, protoc plugins) on PATH: proto/'s tests run
# buf lint and check that the committed generated code is current.
. tools/proto/install.sh || exit 1
echo "buf: $(command -v buf) ($(buf --version))"
echo "go: $(go version)"
# staticcheck, pinned; its checks are listed in staticcheck.conf.
STATICCHECK=$(tools/ci/staticcheck.sh) || exit 1
echo "staticcheck: $STATICCHECK ($("$STATICCHECK" -version))"

# SDK and client tools: proto/ checks the Python and TypeScript SDK code is
# current; tools/clientcheck runs the SDK examples and the official openai
# client against a real bitnet up.
. tools/proto/sdk.sh
ensure_sdk_tools || exit 1
(cd tools/clientcheck/openai-node && npm ci --no-audit --no-fund --silent) || exit 1
export BITNET_CLIENT_CHECKS=require
echo "protoc: $(protoc --version), grpc_python_plugin: $(command -v grpc_python_plugin), node: $(node --version)"

. tools/ci/steps.sh

gofmt_clean() {
	local unformatted
	unformatted=$(gofmt -l $(git ls-files '*.go'))
	[ -z "$unformatted" ] || {
		echo "gofmt needed:" $unformatted >&2
		return 1
	}
}
step "gofmt" gofmt_clean
step "go vet" go vet ./...
# go.mod and go.sum as go mod tidy leaves them (direct dependencies not
# marked // indirect, nothing missing, nothing unused).
step "go mod tidy -diff" go mod tidy -diff
step "staticcheck" "$STATICCHECK" ./...
gotest "go test -race (amd64)" go test -race -count=1 -timeout 30m ./...
# Checks the NEON assembly against its Go declarations.
step "go vet (arm64)" env GOARCH=arm64 go vet ./shared/...
# qemu's default CPU ("max") has dotprod: the NEON path runs its SDOT kernels
# (the plain ones are tested directly too).
gotest "go test (arm64 under qemu-aarch64)" env CGO_ENABLED=0 GOARCH=arm64 \
	go test -count=1 -timeout 30m -exec qemu-aarch64 ./shared/...
# ARMv8.0 without dotprod: dispatch must pick the plain NEON kernels, which
# must not use v8.2+ instructions.
gotest "go test (arm64 ARMv8.0, qemu-aarch64 -cpu cortex-a53)" env CGO_ENABLED=0 GOARCH=arm64 \
	go test -short -count=1 -timeout 10m -exec 'qemu-aarch64 -cpu cortex-a53' ./shared/kernels/ ./shared/hardware/
cross() {
	GOOS=darwin GOARCH=arm64 go build ./... &&
		GOOS=darwin GOARCH=arm64 go vet ./... &&
		GOOS=darwin GOARCH=amd64 go build ./... &&
		GOOS=windows GOARCH=amd64 go vet ./shared/hardware/ ./shared/metal/
}
step "cross builds (darwin/arm64, whole module: the Metal backend through purego; darwin/amd64; windows: hardware report)" cross
summary "make test"
