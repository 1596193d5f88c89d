.PHONY: up test build

# up runs the whole mesh in one process with embedded storage.
up:
	go run ./cmd/bitnet up

# test runs every check CI runs (installs qemu-user and Consul when missing).
test:
	./tools/ci/test.sh

build:
	CGO_ENABLED=0 go build -o bin/bitnet ./cmd/bitnet
