#!/usr/bin/env bash
# Cohort's one entry point.
#   ./run.sh [KEY=VALUE...]  build (release) and boot Cohort under QEMU TCG; the
#                            arguments are the kernel command line; the exit
#                            status is the guest's (0 = success)
#   ./run.sh test            install what is missing, then run every test
#   ./run.sh bench           boot benchmark: BENCH lines on stdout
set -euo pipefail
cd "$(dirname "$0")"

KERNEL=target/x86_64-unknown-linux-gnu/release/cohort
HARNESS=target/release/cohort-harness

say() { printf '\033[1mrun.sh:\033[0m %s\n' "$*" >&2; }

# Debian's qemu-system-x86 gives qemu-system-x86_64 (TCG; KVM is not used).
ensure_qemu() {
    command -v qemu-system-x86_64 >/dev/null && return
    say "qemu-system-x86_64 not found: installing Debian's qemu-system-x86"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null
    command -v qemu-system-x86_64 >/dev/null || { say "error: installing qemu-system-x86 did not provide qemu-system-x86_64"; exit 1; }
}

# The kernel is built from kernel/, so kernel/.cargo/config.toml (the
# freestanding flags) applies to it and to nothing else.
build() {
    say "building the kernel (release)"
    (cd kernel && cargo build --release --target x86_64-unknown-linux-gnu --quiet)
    cargo build --release --quiet -p cohort-tests
}

case "${1:-}" in
test)
    shift
    ensure_qemu
    say "host tests: cargo test"
    cargo test --quiet
    build
    say "in-emulator tests"
    "$HARNESS" test "$KERNEL"
    ;;
bench)
    shift
    ensure_qemu
    build
    "$HARNESS" bench "$KERNEL"
    ;;
*)
    ensure_qemu
    build
    say "booting $KERNEL under QEMU TCG, -m 32M; command line: ${*:-(empty)}"
    exec "$HARNESS" run "$KERNEL" "$@"
    ;;
esac
