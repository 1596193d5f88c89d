#!/usr/bin/env bash
# Refreshes the local buf modules that hold the third-party protos our APIs
# import (the Buf Schema Registry is unreachable), unmodified and with their
# licenses:
#   third_party/googleapis   google/api (HTTP bindings, field behaviour) and
#                            google/rpc/status, from the pinned npm package
#                            google-proto-files;
#   third_party/grpc-gateway the protoc-gen-openapiv2 options (OpenAPI
#                            annotations), from the grpc-gateway Go module at
#                            the version go.mod requires.
# Run it after changing a version or the file lists, then run
# tools/proto/generate.sh and commit the result.
set -euo pipefail
cd "$(dirname "$0")/../.."

GOOGLE_PROTO_FILES_VERSION=6.0.1 # npm google-proto-files
GOOGLEAPIS_FILES=(
	google/api/annotations.proto
	google/api/field_behavior.proto
	google/api/http.proto
	google/api/httpbody.proto
	google/rpc/status.proto
)
GATEWAY_FILES=(
	protoc-gen-openapiv2/options/annotations.proto
	protoc-gen-openapiv2/options/openapiv2.proto
)
GATEWAY_VERSION=$(sed -n 's/^BITNET_PROTO_GATEWAY_VERSION=\([^ ]*\).*/\1/p' tools/proto/install.sh)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# copy SRC_ROOT DST FILES...: replaces DST's files with SRC_ROOT's.
copy() {
	local src=$1 dst=$2
	shift 2
	find "$dst" -name '*.proto' -delete 2>/dev/null || true
	for f in "$@"; do
		mkdir -p "$dst/$(dirname "$f")"
		cp "$src/$f" "$dst/$f"
		chmod 644 "$dst/$f"
	done
	cp "$src/LICENSE" "$dst/LICENSE"
	chmod 644 "$dst/LICENSE"
}

(cd "$tmp" && npm pack --silent "google-proto-files@$GOOGLE_PROTO_FILES_VERSION" >/dev/null &&
	tar xzf "google-proto-files-$GOOGLE_PROTO_FILES_VERSION.tgz")
mkdir -p third_party/googleapis
copy "$tmp/package" third_party/googleapis "${GOOGLEAPIS_FILES[@]}"
cat >third_party/googleapis/README.md <<README
# third_party/googleapis

Unmodified copies of the googleapis protos that the bitnet APIs import, from the
npm package \`google-proto-files@$GOOGLE_PROTO_FILES_VERSION\` (Apache License 2.0: LICENSE and
each file's header). A module of the buf workspace (/buf.yaml), neither linted
nor generated (the Go packages come from google.golang.org/genproto).
Refreshed by \`tools/proto/third_party.sh\`.
README

gwdir=$(go mod download -json "github.com/grpc-ecosystem/grpc-gateway/v2@$GATEWAY_VERSION" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$gwdir" ] || { echo "grpc-gateway $GATEWAY_VERSION: no module directory" >&2; exit 1; }
mkdir -p third_party/grpc-gateway
copy "$gwdir" third_party/grpc-gateway "${GATEWAY_FILES[@]}"
cat >third_party/grpc-gateway/README.md <<README
# third_party/grpc-gateway

Unmodified copies of the protoc-gen-openapiv2 option protos (OpenAPI
annotations in our protos), from the Go module
\`github.com/grpc-ecosystem/grpc-gateway/v2@$GATEWAY_VERSION\` (BSD 3-Clause License:
LICENSE). A module of the buf workspace (/buf.yaml), neither linted nor
generated (the Go package is part of the grpc-gateway module).
Refreshed by \`tools/proto/third_party.sh\`.
README
echo "third_party: ${#GOOGLEAPIS_FILES[@]} googleapis files (google-proto-files@$GOOGLE_PROTO_FILES_VERSION), ${#GATEWAY_FILES[@]} grpc-gateway files ($GATEWAY_VERSION)"
