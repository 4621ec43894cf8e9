#!/bin/sh
# iperf3 between two Cohort guests, build against build, in one lab run:
# for each kernel given, its app=iperf3-client (net.reps=3, 16 MiB a test)
# against its own app=iperf3, over the shared-memory channel (both in group
# "lab") and over netfront (the client in no group), as cohort-bench.sh's
# iperf3 points. For comparing builds of Cohort's iperf3 apps (README,
# "Benchmarks"); not part of `cargo test` or `./run.sh bench`.
#   cohort-bench-iperf3.sh CLOCK NAME=KERNEL...   CLOCK: wall, or virtual under -icount
# Figures: net.iperf3_tcp (the receiver's Mbit/s), path channel/NAME and
# netfront/NAME (channel+netfront/NAME for a test whose frames went both
# ways). Checks: xen-bench-iperf3-NAME-channel, xen-bench-iperf3-NAME-netfront.
# shellcheck source=../dom0/scenario-lib.sh
. /usr/share/cohort/scenario-lib.sh

clock=${1:?usage: cohort-bench-iperf3.sh CLOCK NAME=KERNEL...}
shift
[ $# -gt 0 ] || { echo "usage: cohort-bench-iperf3.sh CLOCK NAME=KERNEL..."; exit 2; }
BYTES=16777216 REPS=3
# Addresses 198.18.0.86-87 and MACs 00:16:3e:c0:07:86-87: no other
# scenario file uses them.
SRV=198.18.0.86 CLI=198.18.0.87

# cohort NAME KERNEL IP CMDLINE: a Cohort guest with a vif on xenbr0.
cohort() {
    cohort_cfg "$1" "$2" "net.ip=$3/15 bench.clock=$clock $4" "vif = [ \"bridge=xenbr0,mac=00:16:3e:c0:07:${3##*.}\" ]"
}
# measure BUILD KERNEL PATH [GROUP-OPTION]: the client's $REPS tests against
# the server; its BENCH lines with /BUILD after their path; the check
# xen-bench-iperf3-BUILD-PATH.
measure() {
    cohort cli "$2" "$CLI" "app=iperf3-client ${4:-} net.peer=$SRV net.bytes=$BYTES net.reps=$REPS"
    xl_create /tmp/cli.cfg
    if wait_quietly 1200 dom_shutdown cli && ! dom_crashed cli && wait_until 20 guest_event cli app ok=true \
        && [ "$(event_count cli iperf3 role=client ok=true)" = $REPS ]; then
        guest_events cli iperf3 role=client
        guest_log cli | grep '^BENCH' | sed "s|\"path\":\"\([^\"]*\)\"|\"path\":\"\1/$1\"|"
        ok "xen-bench-iperf3-$1-$3"
    else
        guest_explain cli; fail "xen-bench-iperf3-$1-$3" "app=iperf3-client did not finish its $REPS tests"
    fi
    guest_finish cli
}

discoveryd_running || discoveryd_start
for build in "$@"; do
    name=${build%%=*} kernel=${build#*=}
    echo "bench: build $name ($kernel, md5 $(md5sum < "$kernel" | cut -c1-12))"
    cohort srv "$kernel" "$SRV" "app=iperf3 net.group=lab"
    xl_create /tmp/srv.cfg
    if wait_until 60 guest_event srv address; then
        needs srv
        measure "$name" "$kernel" channel net.group=lab
        measure "$name" "$kernel" netfront
        needs
    else
        guest_explain srv
        fail "xen-bench-iperf3-$name-channel" "the iperf3 server has no address"
        fail "xen-bench-iperf3-$name-netfront" "the iperf3 server has no address"
    fi
    guest_finish srv
done
