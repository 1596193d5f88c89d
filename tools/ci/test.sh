#!/usr/bin/env bash
# Runs every check CI runs: vet, unit and integration tests with -race on this
# machine, and the arm64 (NEON) tests under qemu-aarch64. Installs what it
# needs (pinned) on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")/../.."

. tools/ci/deps.sh
ensure_qemu

echo "== go vet"
go vet ./...

echo "== go test -race (amd64)"
go test -race -count=1 -timeout 30m ./...

echo "== go test (arm64 under qemu-aarch64)"
CGO_ENABLED=0 GOARCH=arm64 go test -count=1 -timeout 30m -exec qemu-aarch64 ./shared/...
