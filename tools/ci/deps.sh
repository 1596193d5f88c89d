# Sourced by the CI scripts: installs the tools the tests need, once.

apt_install() {
	if [ "$(id -u)" != 0 ]; then
		echo "need root to apt-get install $*" >&2
		return 1
	fi
	if [ -z "${APT_UPDATED:-}" ]; then
		apt-get update -qq
		APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# ensure_qemu installs qemu-aarch64 (Debian qemu-user) for the arm64 tests.
ensure_qemu() {
	command -v qemu-aarch64 >/dev/null && return 0
	echo "installing Debian qemu-user (apt-get) for qemu-aarch64"
	apt_install qemu-user
}

# ensure_chromium installs Debian's chromium for the console's browser tests
# (services/console), at the version they were last run with while the
# archive has it, else at the archive's current one (security updates
# replace it).
CHROMIUM_VERSION=${CHROMIUM_VERSION:-156.0.8078.129-1~deb12u1}
ensure_chromium() {
	command -v chromium >/dev/null && return 0
	echo "installing Debian chromium (apt-get) for the console's browser tests"
	apt_install "chromium=$CHROMIUM_VERSION" || apt_install chromium
}

# ensure_clang installs Debian's clang-19 (clang++-19): the Metal kernels
# compile as C++ for their emulator (shared/metal/emulator), whose tests
# then run instead of skipping.
ensure_clang() {
	command -v clang++-19 >/dev/null && return 0
	echo "installing Debian clang-19 (apt-get) for the Metal kernel emulator"
	apt_install clang-19
}
