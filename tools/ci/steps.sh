# Sourced by test.sh and check.sh: runs their steps without stopping at the
# first failure, shows every output, counts go test packages (the "ok" and
# "FAIL <package>" lines) and ends with one summary line:
#   make test: N packages passed, 0 failed; 6 other checks passed, 0 failed (14m3s)

steps_log=$(mktemp -d)
trap 'rm -rf "$steps_log"' EXIT
steps_start=$SECONDS
steps_lines=()
steps_failed=()
pkgs_ok=0
pkgs_failed=0
checks_ok=0
checks_failed=0

# step NAME CMD...: a check that is not go test (gofmt, vet, builds).
step() {
	local name=$1
	shift
	echo "== $name"
	if "$@"; then
		checks_ok=$((checks_ok + 1))
		steps_lines+=("ok    $name")
	else
		checks_failed=$((checks_failed + 1))
		steps_lines+=("FAIL  $name")
		steps_failed+=("$name")
	fi
}

# gotest NAME CMD...: a go test command (env VAR=... go test ... allowed),
# counted per package.
gotest() {
	local name=$1
	shift
	echo "== $name"
	local log="$steps_log/$(printf '%s' "$name" | tr -c 'A-Za-z0-9' _)"
	"$@" 2>&1 | tee "$log"
	local rc=${PIPESTATUS[0]} ok failed
	ok=$(grep -cE '^ok[[:space:]]' "$log" || true)
	failed=$(grep -cE '^FAIL[[:space:]]+[^[:space:]]' "$log" || true)
	if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
		failed=1 # failed before any package ran (a build error)
	fi
	pkgs_ok=$((pkgs_ok + ok))
	pkgs_failed=$((pkgs_failed + failed))
	if [ "$rc" = 0 ]; then
		steps_lines+=("ok    $name: $ok packages")
	else
		steps_lines+=("FAIL  $name: $ok passed, $failed failed: $(grep -E '^FAIL[[:space:]]+[^[:space:]]' "$log" | awk '{print $2}' | tr '\n' ' ')")
		steps_failed+=("$name")
	fi
}

# summary LABEL: prints the steps and the closing line; returns 1 when
# anything failed.
summary() {
	local t=$((SECONDS - steps_start))
	echo "== summary"
	printf '%s\n' "${steps_lines[@]}"
	echo "$1: $pkgs_ok packages passed, $pkgs_failed failed; $checks_ok other checks passed, $checks_failed failed ($((t / 60))m$((t % 60))s)"
	[ "${#steps_failed[@]}" = 0 ]
}
