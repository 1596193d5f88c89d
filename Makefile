.PHONY: up test check build images proto

# up runs the whole mesh in one process with embedded storage.
up:
	go run ./cmd/bitnet up

# test runs every check CI runs (installs qemu-user, Consul and buf when missing)
# and ends with a summary line: packages passed and failed, time taken.
test:
	./tools/ci/test.sh

# check is the quick local loop: gofmt, vet, go test -short without -race.
check:
	./tools/ci/check.sh

build:
	CGO_ENABLED=0 go build -trimpath -o bin/bitnet ./cmd/bitnet

# images builds the amd64 and arm64 OCI images without Docker.
images:
	go run ./tools/image --out dist/oci

# proto regenerates the protobuf code (pinned buf and plugins).
proto:
	tools/proto/generate.sh
