#!/usr/bin/env bash
# Cohort's one entry point: installs what the machine lacks, then hands over
# to cargo and the harness (tests/harness). `./run.sh help` lists the commands.
set -euo pipefail
cd "$(dirname "$0")"

usage() {
    cat <<'EOF'
usage: ./run.sh [COMMAND]

  (none)                   the demo: Xen 4.17 + a Debian dom0 under QEMU, two
                           Cohort guests of one group, a TCP stream and
                           request/response measured over their shared-memory
                           channel and over netfront, side by side
  test [ARGS...]           install what is missing, then run every test:
                           COHORT_SUITES=all cargo test --no-fail-fast [ARGS...]
  lint                     the gates alone: clippy (host crates and the
                           kernel, -D warnings), cargo fmt --check, shellcheck
  bench [wall|virtual]     every benchmark: BENCH lines, target/bench/ files
                           (with a clock: only the Xen benchmarks of that clock)
  ringbench [ARGS...]      the host ring benchmark (no QEMU): the channel's ring
                           between two pinned threads beside memcpy and rtrb;
                           ARGS as `ringbench --help` (e.g. --quick, --out PATH)
  study [--quick] [--resume [--only FACTOR,...]] [--report]
                           the measurement study (issue 16), unattended, under
                           the virtual clock: every point of its matrix the
                           median of 5 repetitions, appended to
                           target/study/points.jsonl as it completes, progress
                           with the time left; then target/study/report.md
                           with SVG and PNG figures, its structure checked;
                           a full run also runs `ringbench` (host, no QEMU)
                           into target/study/ringbench.jsonl for the report.
                           --quick: the reduced matrix (CI), no ringbench;
                           --resume: keep the points (and ring figures)
                           already measured; --only: with --resume, measure
                           only these factors (e.g. type); --report: no lab,
                           only the report from the points kept
  fuzz [SECONDS] [TARGET...]  coverage-guided fuzzing: each target SECONDS
                           (default 120), one at a time (fuzz/run.sh; FUZZ_RUNS=N
                           stops a target after N executions)
  qemu [KEY=VALUE...]      build and boot one Cohort under plain QEMU TCG; the
                           arguments are the kernel command line; the exit
                           status is the guest's (0 = success). KEY=VALUE
                           arguments without `qemu` do the same
  xen-net, xen-channel     the real-Xen netfront, or channel, scenarios alone
  cycles [CYCLES]          real Xen: a peer destroyed (under stream, then
                           RR traffic, in turn) and re-created CYCLES times
                           (default 100); the survivor's grant, port, page
                           and memory counts after every cycle, constant
  soak [MINUTES] [--seed N]  real Xen: stream and RR clients while peers are
                           destroyed, re-created and shut down and the
                           discovery daemon restarted, at random, for MINUTES
                           (default 30); every stream SHA-256 checked, memory
                           sampled (lines kept in target/long/)
  xen-lab                  an interactive dom0 shell on Xen inside QEMU, with
                           Cohort's image, an xl config and the discovery
                           daemon under /cohort
  xen [KEY=VALUE...]       on a Xen host (dom0): `xl create -c` a Cohort guest
  discoveryd-install       on a Xen host (dom0, as root): build the discovery
                           daemon, install it with its systemd unit, start it
  help, --help, -h         this

One test: cargo test -- NAME (e.g. cargo test -- stack_overflow); the suites
and COHORT_SUITES are described in README.md, "Tests".
EOF
}

say() { printf '\033[1mrun.sh:\033[0m %s\n' "$*" >&2; }

# ensure CMD PACKAGE: installs Debian's PACKAGE when CMD is missing.
ensure() {
    command -v "$1" >/dev/null && return
    say "$1 not found: installing Debian's $2"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$2" >/dev/null
    command -v "$1" >/dev/null || { say "error: installing $2 did not provide $1"; exit 1; }
}

# rust-toolchain.toml pins Rust 1.95.0 (with clippy and rustfmt). Where
# rustup has that release only as its `stable` toolchain (a machine's one
# toolchain), it is linked under the pinned name, so that rustup needs no
# download; anywhere else rustup does what it does with a pin.
ensure_toolchain() {
    command -v rustup >/dev/null || return 0
    local pinned home host=x86_64-unknown-linux-gnu sysroot
    pinned=$(sed -n 's/^channel = "\(.*\)"$/\1/p' rust-toolchain.toml)
    home=${RUSTUP_HOME:-$HOME/.rustup}
    [ -n "$pinned" ] && [ ! -e "$home/toolchains/$pinned-$host" ] || return 0
    [ "$(rustup run stable rustc --version 2>/dev/null | cut -d' ' -f2)" = "$pinned" ] || return 0
    sysroot=$(rustup run stable rustc --print sysroot) || return 0
    say "Rust $pinned is rustup's stable toolchain here: linking it as $pinned (rust-toolchain.toml)"
    ln -s "$sysroot" "$home/toolchains/$pinned-$host"
}

# Debian's qemu-system-x86 gives qemu-system-x86_64 (TCG; KVM is not used).
ensure_qemu() { ensure qemu-system-x86_64 qemu-system-x86; }

# The harness binary, built and run by cargo (the debug profile, which
# `cargo test` builds too). It builds the kernel into target/kernel and the
# dom0 daemon into target/dom0.
harness() { cargo run --quiet -p cohort-harness -- "$@"; }

# On a Xen host: whether `xl info` works.
on_xen() { command -v xl >/dev/null && xl info >/dev/null 2>&1; }

xen_scenario() {
    ensure_qemu
    exec cargo run --quiet -p cohort-harness -- lab --cohort --scenario "tests/xen/scenarios/$1 /cohort/cohort" \
        --scenario-timeout 900 --timeout 1000
}

ensure_toolchain

case "${1:-}" in
help | --help | -h)
    usage
    ;;
test)
    shift
    ensure_qemu
    ensure ip iproute2
    ensure python3 python3
    ensure shellcheck shellcheck
    # --no-fail-fast: a failing test binary (a gate, say) does not keep the
    # ones after it from running.
    say "COHORT_SUITES=all cargo test --no-fail-fast $*"
    # The output is kept too, so that a failure's details (libtest's
    # `failures:` blocks) are repeated at the end of a long log, where its
    # reader (CI) looks. cargo's exit status decides.
    mkdir -p target/test-results
    log=target/test-results/cargo-test.log
    status=0
    COHORT_SUITES=all cargo test --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
    if [ "$status" -ne 0 ]; then
        say "cargo test failed (exit $status); its failures again (the whole output: $log):"
        awk '/^failures:$/ { on = 1 } on { print } /^test result:/ { on = 0 } /^error: [0-9]+ targets? failed/ { tail = 1 } tail { print }' "$log"
    fi
    exit "$status"
    ;;
lint)
    ensure shellcheck shellcheck
    say "COHORT_SUITES=lint cargo test --no-fail-fast -p cohort-harness --test lint --test shellcheck"
    COHORT_SUITES=lint exec cargo test --no-fail-fast -p cohort-harness --test lint --test shellcheck
    ;;
bench)
    shift
    ensure_qemu
    exec cargo run --quiet -p cohort-harness -- bench "$@"
    ;;
ringbench)
    shift
    exec cargo run --release --quiet -p cohort-ringbench -- "$@"
    ;;
study)
    shift
    ensure_qemu
    exec cargo run --quiet -p cohort-harness -- study "$@"
    ;;
fuzz)
    shift
    ensure g++ g++
    exec fuzz/run.sh "$@"
    ;;
xen-net)
    xen_scenario cohort-net.sh
    ;;
xen-channel)
    xen_scenario cohort-channel.sh
    ;;
cycles | soak)
    ensure_qemu
    exec cargo run --quiet -p cohort-harness -- "$@"
    ;;
xen-lab)
    ensure_qemu
    exec cargo run --quiet -p cohort-harness -- xen-lab
    ;;
xen)
    shift
    if ! on_xen; then
        say "error: this is not a Xen dom0 (\`xl info\` does not work here)."
        say "Run it on a Xen host with the toolstack installed, or try Xen inside QEMU: ./run.sh xen-lab"
        exit 1
    fi
    kernel=$(harness build kernel)
    cfg=target/cohort-pvh.cfg
    sed -e "s|@KERNEL@|$kernel|" -e "s|@CMDLINE@|$*|" xen/configs/cohort-pvh.cfg > "$cfg"
    say "xl create -c $cfg"
    exec xl create -c "$cfg"
    ;;
discoveryd-install)
    if ! on_xen; then
        say "error: this is not a Xen dom0 (\`xl info\` does not work here); the daemon belongs in dom0."
        exit 1
    fi
    [ "$(id -u)" = 0 ] || { say "error: run as root (it installs to /usr/local/sbin and /etc/systemd/system)"; exit 1; }
    daemon=$(harness build daemon)
    install -m 755 "$daemon" /usr/local/sbin/cohort-discoveryd
    say "installed /usr/local/sbin/cohort-discoveryd"
    if command -v systemctl >/dev/null; then
        install -m 644 xen/discoveryd/cohort-discoveryd.service /etc/systemd/system/cohort-discoveryd.service
        systemctl daemon-reload
        systemctl enable --now cohort-discoveryd
        say "started: systemctl status cohort-discoveryd; journalctl -u cohort-discoveryd"
    else
        say "no systemd: start it with \`/usr/local/sbin/cohort-discoveryd &\` (it logs to stdout)"
    fi
    ;;
"")
    ensure_qemu
    exec cargo run --quiet -p cohort-harness -- demo
    ;;
qemu | *=*)
    [ "$1" = qemu ] && shift
    ensure_qemu
    exec cargo run --quiet -p cohort-harness -- run "$@"
    ;;
*)
    say "error: unknown command \`$1\`"
    usage >&2
    exit 2
    ;;
esac
