#!/usr/bin/env bash
# Installs staticcheck (honnef.co/go/tools) at a pinned version from the Go
# module proxy into the cache, once, and prints the path of the binary. The
# checks it runs are listed in staticcheck.conf at the module root.
#   tools/ci/staticcheck.sh           install when missing, print the path
#   tools/ci/staticcheck.sh --cached  print the path, or fail when not installed
set -euo pipefail
version=0.8.2 # staticcheck 2026.2.2
cache=${BITNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bitnet-mesh}
dir=$cache/staticcheck-$version
bin=$dir/staticcheck
if [ -x "$bin" ] && "$bin" -version 2>/dev/null | grep -qF "($version)"; then
	echo "$bin"
	exit 0
fi
if [ "${1:-}" = --cached ]; then
	exit 1
fi
echo "installing staticcheck v$version (go install honnef.co/go/tools/cmd/staticcheck) into $dir (once)" >&2
mkdir -p "$dir"
GOBIN=$dir go install "honnef.co/go/tools/cmd/staticcheck@v$version" >&2
echo "$bin"
