#!/usr/bin/env bash
# make check: the quick local loop. gofmt, go vet, go mod tidy -diff,
# staticcheck (when installed), and go test -short without
# -race: the slow suites (Consul agents, the README session, buf generate,
# image builds, the LLaMA 3 vectors) skip themselves under -short. Installs
# nothing; make test runs everything.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tools/ci/steps.sh

gofmt_clean() {
	local unformatted
	unformatted=$(gofmt -l $(git ls-files '*.go'))
	[ -z "$unformatted" ] || {
		echo "gofmt needed:" $unformatted >&2
		return 1
	}
}
step "gofmt" gofmt_clean
step "go vet" go vet ./...
step "go mod tidy -diff" go mod tidy -diff
# staticcheck when make test has installed it (tools/ci/staticcheck.sh).
if STATICCHECK=$(tools/ci/staticcheck.sh --cached); then
	step "staticcheck" "$STATICCHECK" ./...
else
	echo "== staticcheck: not installed, skipped (tools/ci/staticcheck.sh installs it; make test does)"
fi
gotest "go test -short" go test -short -count=1 ./...
summary "make check"
