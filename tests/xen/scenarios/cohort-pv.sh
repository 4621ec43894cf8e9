#!/bin/sh
# Cohort's image as a Xen PV guest (type = "pv"; the same ELF the PVH
# scenarios boot), docs/pv.md:
#   cohort-pv.sh [KERNEL]   (default /cohort/cohort)
# result: xen-pv-boots-and-powers-off  a PV guest reports `booted` with entry "pv" and powers off
# result: xen-pv-bad-cmdline-crashes   a PV guest with a bad command-line key names it, then crashes
# result: xen-pv-guest-tests-poweroff  test=all as a PV guest: every test that applies passes, the rest are ignored as such
# result: xen-pv-null-write-caught     a null-pointer write faults through the PV trap table and is reported
# result: xen-pv-boot-bench            bench=boot as PVH and as PV: each prints its boot figures, named after its entry
# result: xen-pv-grant-to-pvh          a PV guest grants a page and an event channel to a PVH guest, which maps it
# result: xen-pvh-grant-to-pv          a PVH guest grants a page and an event channel to a PV guest, which maps it
# result: xen-pv-net-dom0-echo         a PV guest's netfront: its address, dom0's ping, 4 MiB through its TCP echo (SHA-256)
# result: xen-pv-net-clean-shutdown    a PV poweroff request closes the PV guest's netfront cleanly
# result: xen-pv-channel-pv-to-pvh     a PV client streams 64 MiB to a PVH server of its group, >= 99 % over the channel
# result: xen-pv-channel-pvh-to-pv     a PVH client streams 64 MiB to a PV server of its group, >= 99 % over the channel
# shellcheck source=../dom0/scenario-lib.sh
. /usr/share/cohort/scenario-lib.sh

kernel=${1:-/cohort/cohort}
[ -f "$kernel" ] || { fail cohort-image "no kernel image at $kernel"; exit 0; }

# typed NAME TYPE: NAME's config (cohort_cfg's) made guest type TYPE;
# fails when it has no type line to change.
typed() {
    sed -i "s/^type = \"pvh\"$/type = \"$2\"/" "/tmp/$1.cfg"
    grep -q "^type = \"$2\"$" "/tmp/$1.cfg"
}
# pv_guest NAME CMDLINE: a Cohort guest's config (cohort_cfg), as type "pv".
pv_guest() { cohort_cfg "$1" "$kernel" "$2" && typed "$1" pv; }
# booted_as NAME TYPE: NAME's booted event says the TYPE entry ran (so a
# check cannot pass on a guest of the other type).
booted_as() { guest_event "$1" booted entry="$2"; }
ended() { wait_until 60 dom_shutdown "$1"; }
# What a failed PV boot leaves: its console, and Xen's words about the
# domain (a PV guest without a trap table that faults is crashed by Xen,
# which says why in its log; xen-hvmctx does not apply to PV).
pv_explain() {
    echo "--- console of $1 ($(dom_state "$1")):"; guest_log "$1" | tail -25
    echo "--- xl create:"; tail -n 5 /tmp/xl-create.log 2>/dev/null
    echo "--- xl dmesg (last 25 lines):"; xl dmesg | tail -n 25
}

# 1. The summary boot: the booted event says the PV entry ran, then a
# poweroff (state s, not c).
if ! pv_guest pvsum ""; then
    fail xen-pv-boots-and-powers-off "cohort_cfg's config has no type line to turn into pv"
elif xl_create /tmp/pvsum.cfg && ended pvsum && ! dom_crashed pvsum && guest_event pvsum booted entry=pv; then
    guest_log pvsum | grep -E "PV|entry|memory map|heap|Xen"
    ok xen-pv-boots-and-powers-off "$(guest_events pvsum booted)"
else
    pv_explain pvsum; fail xen-pv-boots-and-powers-off "no booted event with entry pv, or no clean poweroff"
fi
guest_finish pvsum

# 2. A bad key: the PV console works before the command line is parsed.
if pv_guest pvbad "bad.key=1" && xl_create /tmp/pvbad.cfg && ended pvbad && dom_crashed pvbad \
    && guest_event pvbad boot_failed what="kernel command line" key=bad.key; then
    guest_log pvbad | grep error
    ok xen-pv-bad-cmdline-crashes
else
    pv_explain pvbad; fail xen-pv-bad-cmdline-crashes "expected a crash naming bad.key"
fi
guest_finish pvbad

# 3. The kernel tests as a PV guest. Those that do not apply yet are
# ignored, each with why (its test_ignored event): the IST stack-overflow
# test (no IST under PV) and the interrupt-only test (events are polled on
# Xen). xen_grant_refs runs on the grant table mapped PV's way.
if pv_guest pvtests "test=all" && xl_create /tmp/pvtests.cfg && ended pvtests && ! dom_crashed pvtests \
    && booted_as pvtests pv \
    && guest_event pvtests test_result ok=true \
    && guest_event pvtests test name=breakpoint_resumes ok=true \
    && guest_event pvtests test name=timer_ticks ok=true \
    && guest_event pvtests test name=xen_xenstore_watch ok=true \
    && guest_event pvtests test name=xen_event_loopback ok=true \
    && guest_event pvtests test name=xen_grant_refs ok=true; then
    guest_log pvtests | grep -E "^test |test result"
    ok xen-pv-guest-tests-poweroff "$(guest_events pvtests test_result)"
else
    pv_explain pvtests; fail xen-pv-guest-tests-poweroff "no clean poweroff with every applicable test passing"
fi
guest_finish pvtests

# 4. An exception reaches Cohort's handler through the trap table (and
# the null page, which the domain builder maps, is unmapped again).
if pv_guest pvnull "test=null_pointer_write" && xl_create /tmp/pvnull.cfg && ended pvnull && ! dom_crashed pvnull \
    && booted_as pvnull pv \
    && guest_event pvnull test name=null_pointer_write ok=true \
    && guest_event pvnull fault vector=14 cr2=8 guard="null page"; then
    guest_log pvnull | grep -E "EXCEPTION|null"
    ok xen-pv-null-write-caught
else
    pv_explain pvnull; fail xen-pv-null-write-caught "the null-pointer write was not reported through the trap table"
fi
guest_finish pvnull

# 5. The boot benchmark, one PVH and one PV guest of the same image: the
# BENCH lines (the boot times are named after the entry that ran), with
# the paths cohort-bench.sh gives them: xen-pvh and xen-pv.
cohort_cfg pvhboot "$kernel" "bench=boot"
# bench_lines NAME PATH: the guest's BENCH lines, path boot renamed PATH.
bench_lines() { guest_log "$1" | grep '^BENCH ' | sed "s/\"path\":\"boot\"/\"path\":\"$2\"/"; }
if xl_create /tmp/pvhboot.cfg && ended pvhboot && ! dom_crashed pvhboot \
    && pv_guest pvboot "bench=boot" && xl_create /tmp/pvboot.cfg && ended pvboot && ! dom_crashed pvboot \
    && wait_until 20 has_figure pvhboot image.loaded_size && wait_until 20 has_figure pvboot image.loaded_size \
    && has_figure pvhboot boot.pvh_entry_to_ready && has_figure pvboot boot.pv_entry_to_ready; then
    bench_lines pvhboot xen-pvh
    bench_lines pvboot xen-pv
    ok xen-pv-boot-bench "$(bench_lines pvboot xen-pv | grep -F boot.pv_entry_to_ready)"
else
    pv_explain pvboot; fail xen-pv-boot-bench "no boot figures from both a PVH and a PV guest"
fi
guest_finish pvhboot; guest_finish pvboot

# 6. Grants with PV semantics, against PVH: the offering guest grants a
# page (its machine frame, under PV) and an unbound port, the accepting
# one maps the grant (at a virtual address, under PV), checks the
# pattern and answers through the page and the port (kernel tests
# xen_grant_offer and xen_grant_accept, as cohort.sh runs them PVH to PVH).
# exchange CHECK OFFER_TYPE ACCEPT_TYPE
exchange() {
    _o=${2}offer _a=${3}accept
    cohort_cfg "$_o" "$kernel" "test=xen_grant_offer"
    cohort_cfg "$_a" "$kernel" "test=xen_grant_accept"
    if typed "$_o" "$2" && typed "$_a" "$3" && xl_create "/tmp/$_o.cfg" -p && xl_create "/tmp/$_a.cfg" -p; then
        _do=$(xl domid "$_o") _da=$(xl domid "$_a")
        xenstore-write "/local/domain/$_do/data/peer" "$_da" "/local/domain/$_da/data/peer" "$_do"
        xl unpause "$_o"; xl unpause "$_a"
    fi
    if ended "$_o" && ended "$_a" && ! dom_crashed "$_o" && ! dom_crashed "$_a" \
        && booted_as "$_o" "$2" && booted_as "$_a" "$3" \
        && guest_event "$_o" test name=xen_grant_offer ok=true \
        && guest_event "$_a" test name=xen_grant_accept ok=true; then
        guest_log "$_o" | grep -E "offered|answer"; guest_log "$_a" | grep mapped
        ok "$1"
    else
        pv_explain "$_o"; pv_explain "$_a"; fail "$1" "the grant and event exchange did not complete"
    fi
    guest_finish "$_o"; guest_finish "$_a"
}
exchange xen-pv-grant-to-pvh pv pvh
exchange xen-pvh-grant-to-pv pvh pv

# 7. Netfront as a PV guest (its rings and buffers are grants as above),
# against dom0's netback: 198.18.0.90 (MAC 00:16:3e:c0:07:90).
cohort_cfg pvecho "$kernel" "app=echo net.ip=198.18.0.90/15 net.port=7" 'vif = [ "bridge=xenbr0,mac=00:16:3e:c0:07:90" ]'
size=4194304
if typed pvecho pv && xl_create /tmp/pvecho.cfg && wait_until 60 guest_event pvecho address ip=198.18.0.90 \
    && booted_as pvecho pv \
    && ping_guest pvecho 198.18.0.90; then
    tail -1 /tmp/ping-pvecho.out
    head -c $size /dev/urandom > /tmp/pvecho-in
    t0=$(now_ms)
    timeout 300 nc 198.18.0.90 7 < /tmp/pvecho-in > /tmp/pvecho-out
    t1=$(now_ms)
    sent=$(sha256sum < /tmp/pvecho-in | cut -d' ' -f1)
    back=$(sha256sum < /tmp/pvecho-out | cut -d' ' -f1)
    if [ "$sent" = "$back" ]; then
        ok xen-pv-net-dom0-echo "$size bytes back in $((t1 - t0)) ms, sha256 $sent"
    else
        pv_explain pvecho; fail xen-pv-net-dom0-echo "sent sha256 $sent, got $(wc -c < /tmp/pvecho-out) bytes with $back"
    fi
    rm -f /tmp/pvecho-in /tmp/pvecho-out
else
    cat /tmp/ping-pvecho.out 2>/dev/null; pv_explain pvecho; fail xen-pv-net-dom0-echo "no address event or no ping reply"
fi
d=$(xl domid pvecho 2>/dev/null)
[ -n "$d" ] && xenstore-write "/local/domain/$d/control/shutdown" poweroff
if [ -n "$d" ] && wait_until 60 dom_shutdown pvecho && ! dom_crashed pvecho \
    && guest_event pvecho device_closed device=netfront netfront_closed=true grant_refs=0 mapped=0 pages=0 \
    && [ "$(xenstore-read "/local/domain/0/backend/vif/$d/0/state" 2>/dev/null)" = 6 ]; then
    guest_log pvecho | grep -E "netfront" | tail -3
    ok xen-pv-net-clean-shutdown
else
    pv_explain pvecho; fail xen-pv-net-clean-shutdown "no clean netfront close on a poweroff request"
fi
guest_finish pvecho

# 8. The shared-memory channel between a PV and a PVH guest of one group
# (the discovery daemon's lists), each way round: the client's 64 MiB
# stream, SHA-256 checked, with at least 99 % of its frames on the
# channel. Server 198.18.0.91, client .92 (MACs c0:07:91, c0:07:92).
# channel CHECK SERVER_TYPE CLIENT_TYPE
channel() {
    _s=${2}srv _c=${3}cli
    cohort_cfg "$_s" "$kernel" "app=echo net.group=pvlab net.ip=198.18.0.91/15" 'vif = [ "bridge=xenbr0,mac=00:16:3e:c0:07:91" ]'
    cohort_cfg "$_c" "$kernel" "app=stream net.group=pvlab net.ip=198.18.0.92/15 net.peer=198.18.0.91 net.bytes=67108864" \
        'vif = [ "bridge=xenbr0,mac=00:16:3e:c0:07:92" ]'
    if typed "$_s" "$2" && typed "$_c" "$3" \
        && xl_create "/tmp/$_s.cfg" && wait_until 60 guest_event "$_s" address && xl_create "/tmp/$_c.cfg" \
        && needs "$_s" && wait_until 300 dom_shutdown "$_c" && ! dom_crashed "$_c" \
        && guest_event "$_c" stream match=true && booted_as "$_s" "$2" && booted_as "$_c" "$3"; then
        _up=$(guest_events "$_c" channel_up peer="$(xl domid "$_s")" --first)
        _share=$(channel_share "$_c" stream)
        guest_events "$_c" stream
        if [ -n "$_up" ] && [ -n "$_share" ] && at_least "$_share" 99; then
            ok "$1" "channel up ($_up), ${_share}% of the stream's frames on it"
        else
            fail "$1" "channel not up or only ${_share:-?}% of the frames took it"
        fi
    else
        pv_explain "$_s"; pv_explain "$_c"; tail -5 "$DISCOVERYD_LOG"
        fail "$1" "the 64 MiB stream did not complete with a matching SHA-256"
    fi
    needs
    guest_finish "$_c"; guest_finish "$_s"
}
if discoveryd_running || discoveryd_start; then
    channel xen-pv-channel-pv-to-pvh pvh pv
    channel xen-pv-channel-pvh-to-pv pv pvh
else
    fail xen-pv-channel-pv-to-pvh "no discovery daemon"; fail xen-pv-channel-pvh-to-pv "no discovery daemon"
fi
