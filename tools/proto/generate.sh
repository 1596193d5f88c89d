#!/usr/bin/env bash
# Regenerates the committed code from proto/: Go messages, gRPC stubs, REST
# gateways next to the protos, OpenAPI v2 specs under proto/openapi/, and the
# Python (sdk/python) and TypeScript (sdk/typescript/src/gen) SDK code.
# Installs the pinned toolchain first (tools/proto/install.sh; the SDKs need
# Debian's protobuf-compiler and protobuf-compiler-grpc, and `npm ci` in
# sdk/typescript), lints and checks the formatting (fix it with: buf format
# -w proto).
# With an argument DIR, generates into DIR instead (proto_test.go diffs that
# against the committed files).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tools/proto/install.sh
. tools/proto/sdk.sh

buf lint
buf format --diff --exit-code proto
check_python_tools
check_ts_tools
if [ $# -gt 0 ]; then
	for t in buf.gen.yaml buf.gen.python.yaml buf.gen.ts.yaml; do
		buf generate --template "$t" -o "$1"
	done
	exit
fi
# Delete what the last run wrote so that removed protos leave nothing behind
# (buf's own clean option would wipe proto/, which holds the sources).
find proto -type f \( -name '*.pb.go' -o -name '*.pb.gw.go' -o -name '*.swagger.json' \) -delete
find sdk/python -type f \( -name '*_pb2.py' -o -name '*_pb2_grpc.py' \) -delete
rm -rf sdk/typescript/src/gen
for t in buf.gen.yaml buf.gen.python.yaml buf.gen.ts.yaml; do
	buf generate --template "$t"
done
echo "generated: $(find proto -type f \( -name '*.pb.go' -o -name '*.pb.gw.go' -o -name '*.swagger.json' \) | wc -l) Go and OpenAPI files," \
	"$(find sdk/python -type f -name '*_pb2*.py' | wc -l) Python, $(find sdk/typescript/src/gen -type f | wc -l) TypeScript"
