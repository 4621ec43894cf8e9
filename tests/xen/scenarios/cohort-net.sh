#!/bin/sh
# Cohort's networking under real Xen: netfront against Linux netback, through
# dom0's bridge xenbr0 (198.18.0.1/15; nothing leaves the machine).
#   cohort-net.sh [KERNEL]   (default /cohort/cohort)
# Checks (each a test of `cargo test`, see tests/xen/README.md):
# result: xen-net-dom0-pings-guest  the guest gets its address and answers dom0's ping
# result: xen-net-dom0-echo-16MiB   16 MiB through the guest's TCP echo, SHA-256 checked
# result: xen-net-two-guests-16MiB  16 MiB from a second guest, SHA-256 checked
# result: xen-net-client-stops-on-shutdown  a client in a long TCP_RR honours a poweroff request
# result: xen-net-deaf-backend-restarted  netback answering nothing for 5 s: netfront connects again, dom0's ping is answered when asked again, the TCP_RR goes on
# result: xen-net-clean-shutdown    a PV poweroff request closes netfront cleanly
# shellcheck source=../dom0/scenario-lib.sh
. /usr/share/cohort/scenario-lib.sh

kernel=${1:-/cohort/cohort}
size=16777216
# guest NAME MAC-SUFFIX CMDLINE: a Cohort guest with a vif on xenbr0.
guest() { cohort_cfg "$1" "$kernel" "$3" "vif = [ \"bridge=xenbr0,mac=00:16:3e:c0:00:$2\" ]"; }
log() { guest_log "$1"; }
crashed() { dom_crashed "$1"; }
explain() { guest_explain "$1"; }
finish() { guest_finish "$1"; }

# 1. An echo guest gets its address and answers dom0's ping (ping_guest:
#    asked again if the guest had to restart netfront).
guest echo 10 "app=echo net.ip=198.18.0.10/15 net.port=7"
xl_create /tmp/echo.cfg
if wait_until 60 guest_event echo address ip=198.18.0.10; then
    if ping_guest echo 198.18.0.10; then
        tail -2 /tmp/ping-echo.out; ok xen-net-dom0-pings-guest
    else
        cat /tmp/ping-echo.out; explain echo; fail xen-net-dom0-pings-guest "no ping reply"
    fi
else
    explain echo; fail xen-net-dom0-pings-guest "guest never reported its address"
fi

# 2. dom0 sends 16 MiB through the guest's TCP echo and checks the SHA-256.
head -c $size /dev/urandom > /tmp/echo-in
t0=$(now_ms)
timeout 600 nc 198.18.0.10 7 < /tmp/echo-in > /tmp/echo-out
t1=$(now_ms)
sent=$(sha256sum < /tmp/echo-in | cut -d' ' -f1)
back=$(sha256sum < /tmp/echo-out | cut -d' ' -f1)
if [ "$sent" = "$back" ]; then
    echo "dom0 -> guest echo: $size bytes back in $((t1 - t0)) ms, sha256 $sent"
    ok xen-net-dom0-echo-16MiB
else
    echo "sent $sent, got $(wc -c < /tmp/echo-out) bytes with sha256 $back"; explain echo
    fail xen-net-dom0-echo-16MiB "echoed data differs"
fi
rm -f /tmp/echo-in /tmp/echo-out

# 3. A second guest sends 16 MiB to the first through the bridge.
guest sender 11 "app=transfer net.ip=198.18.0.11/15 net.peer=198.18.0.10 net.port=7 net.bytes=$size"
xl_create /tmp/sender.cfg
needs echo
if wait_until 600 dom_shutdown sender && ! crashed sender && wait_until 20 guest_event sender transfer bytes=$size match=true; then
    log sender | grep "^transfer:"
    ok xen-net-two-guests-16MiB
else
    explain sender; fail xen-net-two-guests-16MiB "transfer did not complete with matching SHA-256"
fi
needs
finish sender

# 3b. A client asked to power off in the middle of a long TCP_RR stops
#     there: the `stopped` event, a clean close, a poweroff (not a crash).
guest rrc 12 "app=rr net.ip=198.18.0.12/15 net.peer=198.18.0.10 net.port=7 net.count=10000000"
xl_create /tmp/rrc.cfg
needs echo
if wait_until 120 guest_event rrc progress app=rr; then
    xenstore-write "/local/domain/$(xl domid rrc)/control/shutdown" poweroff
    if wait_until 60 dom_shutdown rrc && ! crashed rrc && guest_event rrc stopped app=rr \
        && guest_event rrc device_closed clean=true && guest_event rrc app app=rr ok=true; then
        guest_events rrc progress app=rr --last
        ok xen-net-client-stops-on-shutdown
    else
        explain rrc; fail xen-net-client-stops-on-shutdown "the RR client did not stop cleanly on a poweroff request"
    fi
else
    explain rrc; fail xen-net-client-stops-on-shutdown "the RR client never reported progress"
fi
needs
finish rrc

# 3c. Netback answers nothing (dom0 takes a client's vif down for 5 s in
#     the middle of a long TCP_RR, so netback's queue takes no transmits):
#     the guest's watchdog connects netfront again (the deaf netfront of
#     issue 14, on purpose), and once the vif is back up the transactions
#     go on. dom0 pings the guest while its vif is down: ping_guest's first
#     round goes unanswered, so its second round, after the restart, runs
#     here on purpose. A client that runs until asked to stop: a transfer
#     of any length can end before the vif goes down.
guest mute 13 "app=rr net.ip=198.18.0.13/15 net.peer=198.18.0.10 net.port=7 net.count=10000000"
xl_create /tmp/mute.cfg
needs echo
vif="vif$(xl domid mute).0"
done_at() { event_field mute progress "done" app=rr; }
moved_on() { [ "$(done_at)" -gt "$1" ]; }
if wait_until 120 guest_event mute progress app=rr; then
    # Restarts from before (a deaf netfront at boot) do not count.
    restarts=$(event_count mute netfront_restarted ok=true)
    restarted() { [ "$(event_count mute netfront_restarted ok=true)" -gt "$restarts" ]; }
    rm -f /tmp/mute-vif-up
    ip link set "$vif" down
    (sleep 5; ip link set "$vif" up && touch /tmp/mute-vif-up) &
    up=$!
    # Round 2 only once the vif is back and netfront restarted since.
    ready() { [ -e /tmp/mute-vif-up ] && restarted; }
    pinged=0; ping_guest mute 198.18.0.13 ready || pinged=$?
    wait "$up"
    echo "dom0's ping: status $pinged after $PING_ROUNDS rounds"
    # The count after the ping; a later progress event must be higher.
    back=$(done_at)
    if [ "$PING_ROUNDS" = 1 ]; then
        guest_events mute netfront_restarted; cat /tmp/ping-mute.out
        fail xen-net-deaf-backend-restarted "dom0's ping was answered while the vif was down"
    elif [ "$pinged" = 0 ] && wait_until 60 restarted && wait_until 60 moved_on "$back"; then
        xenstore-write "/local/domain/$(xl domid mute)/control/shutdown" poweroff
        if wait_until 60 dom_shutdown mute && ! crashed mute && no_event mute netfront_restarted ok=false \
            && guest_event mute app app=rr ok=true; then
            guest_events mute netfront_restarted
            echo "transactions: $back after dom0's ping, $(done_at) at the last progress event"
            ok xen-net-deaf-backend-restarted
        else
            guest_events mute netfront_restarted; explain mute
            fail xen-net-deaf-backend-restarted "a restart failed, or the client did not stop cleanly"
        fi
    else
        guest_events mute netfront_restarted; explain mute
        cat /tmp/ping-mute.out
        fail xen-net-deaf-backend-restarted "no restart of netfront, dom0's ping not answered in ping_guest's second round, or no transaction after the vif came back"
    fi
else
    explain mute; fail xen-net-deaf-backend-restarted "the client never reported progress"
fi
needs
# Not guest_finish: these restarts were asked for, not the lab's retries.
xl destroy mute >/dev/null 2>&1; wait_gone mute 10

# 4. `xl shutdown`: the guest closes netfront (backend Closed, every grant
#    back) and powers off.
d=$(xl domid echo)
# What `xl shutdown` does for a guest with PV shutdown support; xl itself
# crashes now and then in this dom0 (see xl_create), xenstore-write does not.
xenstore-write "/local/domain/$d/control/shutdown" poweroff
if wait_until 60 dom_shutdown echo && ! crashed echo \
    && guest_event echo device_closed device=netfront netfront_closed=true grant_refs=0 mapped=0 pages=0 \
    && [ "$(xenstore-read "/local/domain/0/backend/vif/$d/0/state" 2>/dev/null)" = 6 ]; then
    log echo | grep -E "netfront: closed|echo:" | tail -3
    ok xen-net-clean-shutdown
else
    echo "backend state: $(xenstore-read "/local/domain/0/backend/vif/$d/0/state" 2>&1)"
    explain echo; fail xen-net-clean-shutdown "no clean netfront close on xl shutdown"
fi
finish echo
