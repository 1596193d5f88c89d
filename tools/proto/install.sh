#!/usr/bin/env bash
# Installs the pinned protobuf toolchain (buf and the four protoc plugins) into
# ${BITNET_CACHE:-$HOME/.cache/bitnet-mesh}/bin, once. Idempotent: each tool is
# installed only when the cached binary is missing or reports another version.
#
# Run it, or source it to also put the cache on PATH:
#   . tools/proto/install.sh
#
# Versions: protoc-gen-go and the grpc-gateway plugins must match the runtime
# modules in go.mod (google.golang.org/protobuf, grpc-gateway/v2), so that the
# committed generated code is what those runtimes expect.

BITNET_PROTO_BUF_VERSION=1.75.0               # npm @bufbuild/buf (ships the binary)
BITNET_PROTO_GO_VERSION=v1.36.12              # google.golang.org/protobuf (go.mod)
BITNET_PROTO_GO_GRPC_VERSION=v1.6.2           # google.golang.org/grpc/cmd/protoc-gen-go-grpc
BITNET_PROTO_GATEWAY_VERSION=v2.33.0          # grpc-gateway/v2 (go.mod)

bitnet_proto_install() (
	set -euo pipefail
	local cache="${BITNET_CACHE:-$HOME/.cache/bitnet-mesh}"
	local bin="$cache/bin"
	mkdir -p "$bin"

	# have NAME WANT CMD...: true when $bin/NAME exists and CMD prints version
	# WANT (with or without its leading v).
	have() {
		local name=$1 want=${2#v} out
		shift 2
		[ -x "$bin/$name" ] || return 1
		out=$("$@" 2>&1) || return 1
		grep -oE '[0-9]+\.[0-9]+\.[0-9]+' <<<"$out" | grep -qxF -- "$want"
	}

	if ! have buf "$BITNET_PROTO_BUF_VERSION" "$bin/buf" --version; then
		if command -v npm >/dev/null; then
			echo "installing buf $BITNET_PROTO_BUF_VERSION (npm @bufbuild/buf)" >&2
			local npmdir="$cache/npm/buf-$BITNET_PROTO_BUF_VERSION"
			mkdir -p "$npmdir"
			npm install --silent --no-audit --no-fund --prefix "$npmdir" \
				"@bufbuild/buf@$BITNET_PROTO_BUF_VERSION" >&2
			# The wrapper package pulls in a per-platform package holding the real binary.
			local real
			real=$(find "$npmdir/node_modules/@bufbuild" -path '*/buf-*/bin/buf' -type f | head -n1)
			[ -n "$real" ] || real="$npmdir/node_modules/.bin/buf"
			ln -sf "$real" "$bin/buf"
		else
			# Slower: compiles the same version from the Go module proxy.
			echo "installing buf $BITNET_PROTO_BUF_VERSION (go install: no npm)" >&2
			rm -f "$bin/buf"
			GOBIN="$bin" go install "github.com/bufbuild/buf/cmd/buf@v$BITNET_PROTO_BUF_VERSION"
		fi
	fi

	# gobin PKG@VERSION: go install into $bin, replacing what is there.
	gobin() {
		local pkg=${1%@*}
		rm -f "$bin/${pkg##*/}"
		GOBIN="$bin" go install "$1"
	}
	if ! have protoc-gen-go "$BITNET_PROTO_GO_VERSION" "$bin/protoc-gen-go" --version; then
		echo "installing protoc-gen-go $BITNET_PROTO_GO_VERSION" >&2
		gobin "google.golang.org/protobuf/cmd/protoc-gen-go@$BITNET_PROTO_GO_VERSION"
	fi
	if ! have protoc-gen-go-grpc "$BITNET_PROTO_GO_GRPC_VERSION" "$bin/protoc-gen-go-grpc" --version; then
		echo "installing protoc-gen-go-grpc $BITNET_PROTO_GO_GRPC_VERSION" >&2
		gobin "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$BITNET_PROTO_GO_GRPC_VERSION"
	fi
	if ! have protoc-gen-grpc-gateway "$BITNET_PROTO_GATEWAY_VERSION" "$bin/protoc-gen-grpc-gateway" --version; then
		echo "installing protoc-gen-grpc-gateway $BITNET_PROTO_GATEWAY_VERSION" >&2
		gobin "github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$BITNET_PROTO_GATEWAY_VERSION"
	fi
	if ! have protoc-gen-openapiv2 "$BITNET_PROTO_GATEWAY_VERSION" "$bin/protoc-gen-openapiv2" --version; then
		echo "installing protoc-gen-openapiv2 $BITNET_PROTO_GATEWAY_VERSION" >&2
		gobin "github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$BITNET_PROTO_GATEWAY_VERSION"
	fi
)

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	bitnet_proto_install
else
	bitnet_proto_install || return
	case ":$PATH:" in
	*":${BITNET_CACHE:-$HOME/.cache/bitnet-mesh}/bin:"*) ;;
	*) export PATH="${BITNET_CACHE:-$HOME/.cache/bitnet-mesh}/bin:$PATH" ;;
	esac
fi
