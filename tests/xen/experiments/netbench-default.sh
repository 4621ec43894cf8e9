#!/bin/sh
# Experiment (not a test): netbench's default configuration alone,
# ROUNDS server/client pairs of 3 repetitions each, optionally with both
# guests pinned to pCPU PCPU. This is for comparing commits: unpinned,
# the channel's TCP_RR p50 falls into modes some 5 us apart, depending
# on where Xen runs the guests. Pinned, 3 repetitions agree to about
# 0.1 us (README, "The channel's request/response latency across the
# code"). It prints each pair's stream and RR p50 figures.
#   cargo run -q -p cohort-harness -- lab --cohort --icount --timeout 1800 --scenario-timeout 1500 \
#       --scenario "tests/xen/experiments/netbench-default.sh virtual /cohort/cohort 1 1"
# For commits older than the events (2026-12-03), it also takes the
# server's address from its log line.
# result: nb-1   the first pair's netbench ran (later pairs: nb-2, ...)
# shellcheck source=../dom0/scenario-lib.sh
. /usr/share/cohort/scenario-lib.sh

clock=${1:-virtual}
kernel=${2:-/cohort/cohort}
rounds=${3:-2}
pin=""
[ -n "${4:-}" ] && pin="cpus = \"$4\""
net_guest() {
    cohort_cfg "$1" "$kernel" "net.ip=198.18.0.$2/15 bench.clock=$clock $3" "vif = [ \"bridge=xenbr0,mac=00:16:3e:c0:02:$2\" ]
$4"
}
addr_up() { guest_event srv address 2>/dev/null || guest_has srv "net: address" 2>/dev/null; }
discoveryd_running || discoveryd_start
r=0
while [ $r -lt "$rounds" ]; do
    r=$((r + 1))
    net_guest srv 30 "app=echo net.group=lab" "$pin"
    xl_create /tmp/srv.cfg
    wait_until 60 addr_up || { fail "nb-$r" "server has no address"; guest_finish srv; continue; }
    net_guest nb 31 "app=netbench net.group=lab net.peer=198.18.0.30 net.bytes=16777216 net.count=2000 net.reps=3" "$pin"
    xl_create /tmp/nb.cfg
    if wait_quietly 1800 dom_shutdown nb; then
        guest_log nb | grep -E '^BENCH.*tcp_rr_latency_p50|^BENCH.*tcp_stream' | sed "s|^|round $r: |"
        ok "nb-$r"
    else
        fail "nb-$r" "netbench did not finish"
    fi
    guest_finish nb
    guest_finish srv
done
