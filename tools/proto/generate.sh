#!/usr/bin/env bash
# Regenerates the committed code from proto/: Go messages, gRPC stubs, REST
# gateways next to the protos, and OpenAPI v2 specs under proto/openapi/.
# Installs the pinned toolchain first (tools/proto/install.sh), lints and
# checks the formatting (fix it with: buf format -w proto).
# With an argument DIR, generates into DIR instead (proto_test.go diffs that
# against the committed files).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tools/proto/install.sh

buf lint
buf format --diff --exit-code proto
if [ $# -gt 0 ]; then
	buf generate --template buf.gen.yaml -o "$1"
	exit
fi
# Delete what the last run wrote so that removed protos leave nothing behind
# (buf's own clean option would wipe proto/, which holds the sources).
find proto -type f \( -name '*.pb.go' -o -name '*.pb.gw.go' -o -name '*.swagger.json' \) -delete
buf generate --template buf.gen.yaml
echo "generated: $(find proto -type f \( -name '*.pb.go' -o -name '*.pb.gw.go' -o -name '*.swagger.json' \) | wc -l) files"
