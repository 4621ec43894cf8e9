#!/usr/bin/env bash
# Cohort on plain QEMU with virtio-net on a tap device, inside a network
# namespace of its own: nothing outside the namespace is reachable (no
# route, no bridge, no forwarding), and the namespace, the tap and QEMU are
# removed on any exit.
#
#   tests/net/qemu-tap.sh KERNEL [GUEST-CMDLINE]        (as root)
#
# GUEST-CMDLINE defaults to "app=echo net.ip=198.18.1.2/24 net.port=7". The
# guest address and the echo port are read from its net.ip= and net.port=
# (or set GUEST_ADDR / GUEST_PORT). Other settings, from the environment:
#   TIMEOUT=600        seconds for the whole run
#   ECHO_BYTES=16777216
#   QEMU=qemu-system-x86_64   QEMU_EXTRA="..."   (extra QEMU arguments)
#   KEEP_LOG=path      copy the guest console there
#
# Scenarios (one `SCENARIO name ... ok|FAILED: reason` line each, then
# `N passed, M failed`; exit status 0 only if all passed):
#   qemu-tap-boot        QEMU starts, the guest prints its banner and finds
#                        the virtio-net device
#   qemu-tap-ping        the guest answers ICMP echo from the host side
#   qemu-tap-tcp-echo    ECHO_BYTES random bytes through the guest's TCP echo
#                        service come back with the same SHA-256
#   qemu-tap-guest-alive the guest is still running, with no panic or fault
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
kernel=${1:-}
cmdline="app=echo net.ip=198.18.1.2/24 net.port=7"
[ $# -ge 2 ] && cmdline=$2
timeout_s=${TIMEOUT:-600}
echo_bytes=${ECHO_BYTES:-16777216}
qemu=${QEMU:-qemu-system-x86_64}
host_addr=198.18.1.1/24
guest_mac=52:54:00:c6:12:02

cidr=$(sed -n 's/.*\bnet\.ip=\([0-9.]*\)\/[0-9]*.*/\1/p' <<<"$cmdline")
guest_addr=${GUEST_ADDR:-${cidr:-198.18.1.2}}
port=$(sed -n 's/.*\bnet\.port=\([0-9]*\).*/\1/p' <<<"$cmdline")
guest_port=${GUEST_PORT:-${port:-7}}

passed=0
failed=0
ok() { echo "SCENARIO $1 ... ok${2:+ ($2)}"; passed=$((passed + 1)); }
fail() { echo "SCENARIO $1 ... FAILED: $2"; failed=$((failed + 1)); }
die() { echo "qemu-tap.sh: $*" >&2; exit 2; }

[ -n "$kernel" ] || die "usage: $0 KERNEL [GUEST-CMDLINE]"
[ -r "$kernel" ] || die "no kernel image at $kernel"
[ "$(id -u)" = 0 ] || die "must run as root (network namespace and tap device)"
for tool in ip python3 "$qemu"; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
case $guest_addr in
    198.18.* | 198.19.*) ;;
    *) die "guest address $guest_addr is outside 198.18.0.0/15" ;;
esac

ns=cohort-net-$$
tap=ctap$$
tap=${tap:0:15}
work=$(mktemp -d /tmp/cohort-net.XXXXXX)
console=$work/console.log
qemu_pid=
watchdog_pid=

cleanup() {
    local status=$?
    trap - EXIT INT TERM USR1
    [ -n "$watchdog_pid" ] && kill "$watchdog_pid" 2>/dev/null
    if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
        kill "$qemu_pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$qemu_pid" 2>/dev/null
    fi
    [ -n "$qemu_pid" ] && wait "$qemu_pid" 2>/dev/null
    ip netns del "$ns" 2>/dev/null
    [ -n "${KEEP_LOG:-}" ] && cp "$console" "$KEEP_LOG" 2>/dev/null
    rm -rf "$work"
    exit "$status"
}
on_timeout() {
    echo "qemu-tap.sh: overall timeout of ${timeout_s}s reached"
    fail qemu-tap-overall-timeout "the run took more than ${timeout_s}s"
    echo "--- guest console (last 20 lines):"
    tail -20 "$console" 2>/dev/null | sed 's/^/    | /'
    echo "$passed passed, $failed failed"
    exit 1
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap on_timeout USR1

# The watchdog ends QEMU first (so a blocked check returns at once), then
# tells the script.
# Its output goes nowhere, so a pipe from this script is not held open, and
# its sleep ends with it.
(
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    sleep "$timeout_s" &
    sleeper=$!
    wait "$sleeper"
    [ -f "$work/qemu.pid" ] && kill "$(cat "$work/qemu.pid")"
    kill -USR1 $$
) >/dev/null 2>&1 &
watchdog_pid=$!

in_ns() { ip netns exec "$ns" "$@"; }

ip netns add "$ns" || die "cannot create network namespace $ns"
in_ns ip link set lo up
in_ns ip tuntap add dev "$tap" mode tap || die "cannot create tap device"
in_ns ip addr add "$host_addr" dev "$tap"
in_ns ip link set "$tap" up

echo "qemu-tap.sh: namespace $ns, $tap $host_addr; guest $guest_addr port $guest_port; cmdline: $cmdline"
# `ip netns exec` execs QEMU, so $! is QEMU itself; -pidfile says so too.
# shellcheck disable=SC2086 # QEMU_EXTRA is a list of words
ip netns exec "$ns" "$qemu" -machine q35 -cpu max -m 32M -nodefaults -display none -no-reboot \
    -accel tcg -serial "file:$console" -pidfile "$work/qemu.pid" \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no" \
    -device "virtio-net-pci,netdev=n0,disable-legacy=on,mac=$guest_mac" \
    -kernel "$kernel" -append "$cmdline" ${QEMU_EXTRA:-} \
    >"$work/qemu.out" 2>&1 &
qemu_pid=$!

show_console() {
    echo "    --- guest console (last 20 lines):"
    tail -20 "$console" 2>/dev/null | sed 's/^/    | /'
    if [ -s "$work/qemu.out" ]; then
        echo "    --- QEMU:"
        sed 's/^/    | /' "$work/qemu.out"
    fi
}
qemu_running() { kill -0 "$qemu_pid" 2>/dev/null; }

# 1. Boot: banner and the virtio-net probe line.
booted=false
for _ in $(seq 300); do
    if grep -q "virtio-net .*MAC\|virtio-net: no device\|virtio-net [0-9a-f:.]*: " "$console" 2>/dev/null || ! qemu_running; then
        break
    fi
    sleep 0.1
done
if ! qemu_running; then
    wait "$qemu_pid"
    fail qemu-tap-boot "QEMU exited with status $? before the device was up"
    show_console
elif ! grep -q "^Cohort " "$console"; then
    fail qemu-tap-boot "no banner on the console within 30s"
    show_console
elif ! grep -q "virtio-net .*MAC" "$console"; then
    fail qemu-tap-boot "the guest did not bring up virtio-net"
    show_console
else
    booted=true
    ok qemu-tap-boot "$(grep -o "virtio-net .*MAC [0-9a-f:]*" "$console" | head -1)"
fi

# 2. Ping from the host side of the tap.
if $booted; then
    if out=$(in_ns python3 "$here/netcheck.py" ping "$guest_addr" --count 3 --deadline 60); then
        ok qemu-tap-ping "$out"
    else
        fail qemu-tap-ping "$out"
        show_console
    fi
else
    fail qemu-tap-ping "not booted"
fi

# 3. TCP echo of ECHO_BYTES random bytes, SHA-256 compared.
if $booted && qemu_running; then
    left=$((timeout_s - SECONDS - 15))
    if out=$(in_ns python3 "$here/netcheck.py" echo "$guest_addr" "$guest_port" --bytes "$echo_bytes" --deadline "$left"); then
        ok qemu-tap-tcp-echo "$out"
    else
        fail qemu-tap-tcp-echo "$out"
        show_console
    fi
else
    fail qemu-tap-tcp-echo "guest not running"
fi

# 4. Still alive and nothing went wrong on the way.
if ! qemu_running; then
    fail qemu-tap-guest-alive "QEMU is gone"
    show_console
elif grep -qiE "panic|fault|error" "$console"; then
    fail qemu-tap-guest-alive "$(grep -iE "panic|fault|error" "$console" | head -1)"
    show_console
else
    ok qemu-tap-guest-alive "$(grep -o "virtio-net: rx .*" "$console" | tail -1)"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
