#!/bin/sh
# Cohort against Linux under real Xen: Cohort guests and Linux reference
# guests (dom0's Debian kernel and its netfront, tests/xen/linux-guest) on
# dom0's bridge xenbr0, 16 MiB each way with the SHA-256 checked end to end,
# with Cohort's netfront offloads (scatter-gather, checksum, GSO) on, then
# off (net.offload=none). Linux to Cohort: netref's stream-check sends
# Cohort's pattern into Cohort's sink and requires the SHA-256 of what it
# sent in the answer. Cohort to Linux: Cohort's stream app sends into
# netref's sink and requires the same. Needs the lab's --linux-guest.
# Every check reads the guests' EVENT lines (the Linux guests' init and
# netref print them as Cohort's guests do: tests/xen/linux-guest), never
# their human lines; a wait ends at once when a peer it depends on has
# ended (`needs`).
#   cohort-linux.sh [KERNEL]   (default /cohort/cohort)
# Checks (each a test of `cargo test`, see tests/xen/README.md):
# result: xen-linux-to-cohort-16MiB             Linux's netref into Cohort's sink, offloads on
# result: xen-cohort-to-linux-16MiB             Cohort's stream into Linux's sink, offloads on
# result: xen-linux-to-cohort-16MiB-no-offload  the same with net.offload=none
# result: xen-cohort-to-linux-16MiB-no-offload  the same with net.offload=none
# shellcheck source=../dom0/scenario-lib.sh
. /usr/share/cohort/scenario-lib.sh

kernel=${1:-/cohort/cohort}
size=16777216
# The long waits poll once a second (wait_quietly): dom0 carries the
# traffic and shares the CPUs. Addresses 198.18.0.60-63 and MACs
# 00:16:3e:c0:04:60-63: no other scenario file uses them.
COHORT_SINK=198.18.0.60 LINUX_CHECK=198.18.0.61 LINUX_SINK=198.18.0.62 COHORT_STREAM=198.18.0.63
# Every check this file declares (the `# result:` lines above).
ALL=$(sed -n 's/^# result: \([^ ]*\).*/\1/p' "$0")
# The offloads Cohort's netfront says it connected with (its `offloads`
# event: each direction's), every one on and off.
OFFLOADS_ON="sg,csum,gso"
OFFLOADS_OFF="none"

# cohort NAME IP CMDLINE: a Cohort guest with a vif on xenbr0.
cohort() { cohort_cfg "$1" "$kernel" "net.ip=$2/15 $3" "vif = [ \"bridge=xenbr0,mac=00:16:3e:c0:04:${2##*.}\" ]"; }
# linux NAME IP CMDLINE: a Linux reference guest with a vif on xenbr0.
linux() { linux_cfg "$1" "ref.ip=$2/15 $3" "vif = [ \"bridge=xenbr0,mac=00:16:3e:c0:04:${2##*.}\" ]"; }
# linux_explain NAME: how a Linux guest ended and its console's last lines.
# A crashed one (Debian's kernel panicked or triple-faulted: state c or sr)
# is a suspected lab fault: Cohort runs nothing in it and reaches it only
# through netback and the bridge; one seen panicked in an exception entry
# with its stack pointer in the CPU entry area, right after Xen's event
# upcall, as QEMU's nested SVM breaks Cohort guests now and then (README).
# The LAB FAULT line (lab_fault) goes with the failure reported next, and
# the test suite runs the Xen scenarios once more.
linux_explain() {
    dom_state "$1" | grep -q . || return 0
    echo "--- console of Linux guest $1 ($(dom_state "$1")):"; guest_log "$1" | tail -n 40 | quoted
    dom_crashed "$1" && lab_fault "LAB FAULT (suspected): Linux guest $1 crashed ($(dom_state "$1")): Debian's kernel under the lab's nested emulation, not Cohort"
    return 0
}
# offloads NAME EXPECTED: does Cohort guest NAME's netfront say it
# negotiated EXPECTED both ways? Says what it reported instead if not.
offloads() {
    guest_event "$1" offloads device=netfront tx="$2" rx="$2" && return 0
    echo "$1 reported \`$(guest_events "$1" offloads)\`, expected tx and rx \`$2\`"
    return 1
}

if [ ! -f /cohort/linux/vmlinuz ] || [ ! -f /cohort/linux/initrd ]; then
    echo "no Linux guest kernel in /cohort/linux: run the lab with --linux-guest"
    for name in $ALL; do fail "$name" "no /cohort/linux/vmlinuz (the lab needs --linux-guest)"; done
    exit 0
fi

# linux_to_cohort NAME COHORT-CMDLINE-EXTRA EXPECTED-OFFLOADS: Cohort's
# echo app (its sink on 9), a Linux guest's stream-check into it: netref
# sends Cohort's pattern, and its `stream` event says whether the sink's
# answer was exactly the byte count and the SHA-256 of what it sent.
linux_to_cohort() {
    cohort lxsink "$COHORT_SINK" "app=echo $2"
    why=
    if ! xl_create /tmp/lxsink.cfg || ! wait_until 60 guest_event lxsink address ip="$COHORT_SINK"; then
        why="the Cohort guest never reported its address"
    elif ! offloads lxsink "$3"; then
        why="netfront did not negotiate the expected offloads"
    else
        needs lxsink
        linux lxcheck "$LINUX_CHECK" "ref.role=check ref.peer=$COHORT_SINK ref.bytes=$size"
        if ! linux_up lxcheck 300 address ip="$LINUX_CHECK"; then
            why="the Linux guest did not come up ($(dom_state lxcheck); the Cohort guest $(dom_state lxsink))"
        elif ! wait_quietly 600 dom_shutdown lxcheck; then
            why="the Linux guest's stream-check did not finish ($(dom_state lxcheck); the Cohort guest $(dom_state lxsink))"
        elif dom_crashed lxcheck; then
            why="the Linux guest crashed ($(dom_state lxcheck))"
        elif ! guest_event lxcheck app app=linux-check ok=true \
            || ! guest_event lxcheck stream bytes=$size check=sha256 match=true; then
            why="Linux's stream-check failed: the Cohort sink's answer did not match the SHA-256 Linux sent, or the stream broke"
        elif dom_shutdown lxsink || ! dom_state lxsink | grep -q .; then
            why="the Cohort echo guest stopped or crashed ($(dom_state lxsink))"
        fi
        needs
    fi
    if [ -z "$why" ]; then
        guest_events lxsink offloads
        guest_events lxcheck stream
        ok "$1"
    else
        dom_state lxsink | grep -q . && guest_explain lxsink
        linux_explain lxcheck; fail "$1" "$why"
    fi
    guest_finish lxcheck
    guest_finish lxsink
}

# linux_sink: the Linux serve guest lxsrv, running. One serves both
# Cohort-to-Linux cases; one that died is replaced, and that is said.
linux_sink() {
    if dom_state lxsrv | grep -q .; then
        dom_shutdown lxsrv || return 0
        echo "the Linux serve guest is gone ($(dom_state lxsrv)); starting a new one"
        guest_finish lxsrv
    fi
    linux lxsrv "$LINUX_SINK" "ref.role=serve"
    if linux_up lxsrv 300 listening service=sink; then
        guest_events lxsrv address
    else
        linux_explain lxsrv; return 1
    fi
}

# sink_answered: lxsrv's sink answered more streams of $size bytes with a
# SHA-256 than the $sinks it had before this check.
sink_answered() { [ "$(event_count lxsrv sink bytes=$size check=sha256)" -gt "$sinks" ]; }

# cohort_to_linux NAME COHORT-CMDLINE-EXTRA EXPECTED-OFFLOADS: Cohort's
# stream app into the sink of the Linux serve guest lxsrv; Cohort checks
# the SHA-256 netref answers and crashes on a mismatch, and netref's
# `sink` event must give the SHA-256 Cohort sent.
cohort_to_linux() {
    why=
    if ! linux_sink; then
        why="the Linux serve guest did not come up"
    else
        needs lxsrv
        cohort lxstream "$COHORT_STREAM" "app=stream net.peer=$LINUX_SINK net.bytes=$size $2"
        sinks=$(event_count lxsrv sink bytes=$size check=sha256)
        if ! xl_create /tmp/lxstream.cfg; then
            why="xl create failed"
        elif ! wait_quietly 600 dom_shutdown lxstream; then
            why="the Cohort stream did not finish ($(dom_state lxstream); the Linux serve guest $(dom_state lxsrv))"
        elif dom_shutdown lxsrv; then
            why="the Linux serve guest stopped during the stream ($(dom_state lxsrv))"
        elif dom_crashed lxstream; then
            why="the Cohort guest crashed ($(dom_state lxstream)): a mismatch or a failed stream"
        elif ! wait_until 20 guest_event lxstream stream bytes=$size check=sha256 match=true; then
            why="no \`stream\` event with the SHA-256 matching from the Cohort guest"
        elif ! offloads lxstream "$3"; then
            why="netfront did not negotiate the expected offloads"
        elif ! wait_until 20 sink_answered; then
            why="the Linux sink reported no SHA-256 answer for $size bytes"
        elif [ "$(event_field lxsrv sink digest bytes=$size check=sha256)" != "$(event_field lxstream stream sent_digest)" ]; then
            why="the Linux sink's SHA-256 is not the one Cohort sent"
        fi
        needs
    fi
    if [ -z "$why" ]; then
        guest_events lxstream offloads
        guest_events lxstream stream
        guest_events lxsrv sink --last
        ok "$1"
    else
        dom_state lxstream | grep -q . && guest_explain lxstream
        linux_explain lxsrv; fail "$1" "$why"
    fi
    guest_finish lxstream
}

linux_to_cohort xen-linux-to-cohort-16MiB "" "$OFFLOADS_ON"
linux_to_cohort xen-linux-to-cohort-16MiB-no-offload net.offload=none "$OFFLOADS_OFF"

cohort_to_linux xen-cohort-to-linux-16MiB "" "$OFFLOADS_ON"
cohort_to_linux xen-cohort-to-linux-16MiB-no-offload net.offload=none "$OFFLOADS_OFF"
guest_finish lxsrv
