#!/usr/bin/env bash
# Builds Consul v1.14.4 (MPL-2.0) from the Go module proxy and caches the binary.
# Debian has no package and `go install` refuses the module (replace directives),
# so: download the module zip, drop the replace lines, build with -mod=mod.
# Prints the path of the binary.
set -euo pipefail
version=1.14.4
cache=${BITNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bitnet-mesh}
bin=$cache/consul-$version
if [ -x "$bin" ] && "$bin" version 2>/dev/null | grep -q "v$version"; then
	echo "$bin"
	exit 0
fi
echo "building Consul v$version from the Go module proxy into $bin (once)" >&2
mkdir -p "$cache"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
zip=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/hashicorp/consul@v$version" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["Zip"])')
cd "$work"
python3 -c 'import sys,zipfile; zipfile.ZipFile(sys.argv[1]).extractall("src")' "$zip"
src=$(echo src/github.com/hashicorp/consul@v$version)
chmod -R u+w "$src"
cd "$src"
sed -i '/^replace github.com\/hashicorp\/consul\//d' go.mod
GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin.tmp" . >&2
mv "$bin.tmp" "$bin"
echo "$bin"
