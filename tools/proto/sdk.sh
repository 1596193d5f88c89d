# Sourced by tools/proto/generate.sh and tools/ci/test.sh: the pinned SDK
# code generators. Python: Debian 12's protoc and grpc_python_plugin, whose
# output matches Debian's python3-protobuf and python3-grpcio runtimes.
# TypeScript: @bufbuild/protoc-gen-es from sdk/typescript's package-lock.json.

BITNET_PROTOC_VERSION=3.21.12 # Debian 12 protobuf-compiler (and python3-protobuf)

# ensure_sdk_tools installs them on a fresh Debian machine (root).
ensure_sdk_tools() {
	if ! command -v protoc >/dev/null || ! command -v grpc_python_plugin >/dev/null ||
		! /usr/bin/python3 -c 'import grpc, google.protobuf' 2>/dev/null; then
		apt_install protobuf-compiler protobuf-compiler-grpc python3-grpcio python3-protobuf
	fi
	if [ ! -x sdk/typescript/node_modules/.bin/protoc-gen-es ]; then
		(cd sdk/typescript && npm ci --no-audit --no-fund --silent)
	fi
}

check_python_tools() {
	local v
	v=$(protoc --version 2>/dev/null || true)
	if [ "$v" != "libprotoc $BITNET_PROTOC_VERSION" ] || ! command -v grpc_python_plugin >/dev/null; then
		echo "Python SDK: need protoc $BITNET_PROTOC_VERSION (got '${v:-none}') and grpc_python_plugin:" \
			"apt-get install protobuf-compiler protobuf-compiler-grpc (Debian 12)" >&2
		return 1
	fi
}

check_ts_tools() {
	if [ ! -x sdk/typescript/node_modules/.bin/protoc-gen-es ]; then
		echo "TypeScript SDK: run 'npm ci' in sdk/typescript first" >&2
		return 1
	fi
}
