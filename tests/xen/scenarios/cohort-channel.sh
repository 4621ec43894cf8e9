#!/bin/sh
# The residency-aware channel under real Xen: Cohort guests in one group on
# this host get a shared-memory channel from the discovery daemon's lists,
# move their TCP traffic over it, fall back to netfront when a peer goes,
# and get a new channel when it comes back.
#   cohort-channel.sh [KERNEL]   (default /cohort/cohort)
# Checks (each a test of `cargo test`, see tests/xen/README.md):
# result: xen-channel-up-64MiB                     the channel comes up; 64 MiB, >= 99 % over it
# result: xen-channel-other-group-uses-netfront    another group gets no channel
# result: xen-channel-group-not-given-by-dom0       with a policy: claiming a group is not enough
# result: xen-channel-peer-destroyed-falls-back    a destroyed peer: close, release, fallback
# result: xen-channel-peer-recreated               a re-created peer gets a new channel
# result: xen-channel-takes-over-a-running-stream  a channel takes over a running stream
# result: xen-channel-clean-shutdown               a PV poweroff request closes channels cleanly
# result: xen-channel-daemon-survives              the daemon ran through it; lists gone
# shellcheck source=../dom0/scenario-lib.sh
. /usr/share/cohort/scenario-lib.sh

kernel=${1:-/cohort/cohort}
# guest NAME IP-SUFFIX CMDLINE: a Cohort guest on xenbr0 with a MAC of its own.
guest() {
    cohort_cfg "$1" "$kernel" "net.ip=198.18.0.$2/15 $3" "vif = [ \"bridge=xenbr0,mac=00:16:3e:c0:01:$2\" ]"
    xl_create "/tmp/$1.cfg"
}
domid() { xl domid "$1" 2>/dev/null; }
# Ended: powered off, crashed or triple-faulted.
ended() { case $(dom_state "$1") in *s*) return 0 ;; esac; return 1; }
# matched NAME KIND: client NAME's measurement KIND (its event) matched.
matched() { guest_event "$1" "$2" match=true; }
# Seconds since the guest's boot of its first log line containing TEXT
# (for people: the console's timestamp).
logged_at() { guest_log "$1" | grep -F "$2" | head -n1 | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p'; }

discoveryd_running || discoveryd_start || { fail xen-channel-daemon "no discovery daemon"; exit 0; }

# 1. Two guests of group "lab": the channel comes up, and a 64 MiB TCP
#    stream from the second to the first goes over it, verified.
guest srv 20 "app=echo net.group=lab"
if ! wait_until 60 guest_event srv address; then
    guest_explain srv; fail xen-channel-up-64MiB "the server guest never got its address"; exit 0
fi
srv_id=$(domid srv)
# Every client below talks to srv: a wait ends at once if srv is gone.
needs srv
guest cli 21 "app=stream net.group=lab net.peer=198.18.0.20 net.bytes=67108864"
cli_id=$(domid cli)
if wait_until 600 ended cli && ! dom_crashed cli && matched cli stream; then
    up=$(guest_events cli channel_up peer="$srv_id" --first)
    share=$(channel_share cli stream)
    at=$(logged_at cli "channel to dom$srv_id")
    echo "client: $up"
    echo "server: $(guest_events srv channel_up peer="$cli_id" --first)"
    echo "channel up $at s after the client's boot (its PVH entry)"
    guest_events cli stream
    guest_events cli frames of=stream
    if [ -n "$up" ] && [ -n "$share" ] && at_least "$share" 99; then
        ok xen-channel-up-64MiB
    else
        fail xen-channel-up-64MiB "channel not up or only ${share:-?}% of the frames took it"
    fi
else
    guest_explain cli; guest_explain srv; tail -5 "$DISCOVERYD_LOG"
    fail xen-channel-up-64MiB "the 64 MiB stream did not complete with a matching SHA-256"
fi
guest_finish cli

# 2. A guest of another group never gets a channel to them, and talks to
#    the server over netfront.
guest other 22 "app=stream net.group=other net.peer=198.18.0.20 net.bytes=8388608"
other_id=$(domid other)
if wait_until 300 ended other && matched other stream; then
    guest_events other stream
    share=$(channel_share other stream)
    if [ "$(event_field other frames channel of=stream)" = 0 ] && no_channel srv "$other_id" && no_channel other "$srv_id"; then
        ok xen-channel-other-group-uses-netfront
    else
        fail xen-channel-other-group-uses-netfront "a channel across groups (share ${share:-?}%)"
    fi
else
    guest_explain other; fail xen-channel-other-group-uses-netfront "its stream over netfront failed"
fi
guest_finish other

# 2b. dom0 decides the groups: the daemon restarts with a policy giving
#     srv and pol the group "lab". rogue's advert claims "lab" too, but the
#     policy does not list it: no list, no channel, its stream goes over
#     netfront; pol, running at the same time, gets its channel to srv.
discoveryd_stop
printf '# dom0 decides the groups, by the names xl gave the domains\nname srv lab\nname pol lab\n' > /tmp/cohort-groups
discoveryd_start --policy /tmp/cohort-groups
guest rogue 26 "app=stream net.group=lab net.peer=198.18.0.20 net.bytes=16777216"
rogue_id=$(domid rogue)
# What it claims, read while it runs (it withdraws its advert at poweroff).
rogue_advert() { xenstore-read "/local/domain/$rogue_id/data/cohort/advert" 2>/dev/null; }
wait_until 60 rogue_advert
claim=$(rogue_advert)
guest pol 27 "app=stream net.group=lab net.peer=198.18.0.20 net.bytes=16777216"
pol_id=$(domid pol)
# What dom0 published (discovery's format: `v1 DOMID=MAC ...`), read once
# srv's list names pol, while rogue still runs.
peers_of() { xenstore-read "/local/domain/0/cohort/peers/$1" 2>/dev/null; }
lists() { case " $(peers_of "$srv_id") " in *" $pol_id="*) return 0 ;; esac; return 1; }
wait_until 60 lists
srv_list=$(peers_of "$srv_id")
rogue_list=$(peers_of "$rogue_id")
if wait_until 300 ended rogue && wait_until 300 ended pol && matched rogue stream && matched pol stream; then
    echo "rogue (dom$rogue_id) advertised: ${claim:-nothing}"
    echo "dom0's lists: srv (dom$srv_id): ${srv_list:-none}; rogue: ${rogue_list:-none}"
    guest_events rogue stream; guest_events pol stream
    rshare=$(channel_share rogue stream)
    pshare=$(channel_share pol stream)
    echo "channel share: rogue ${rshare:-?}%, pol ${pshare:-?}%"
    if ! echo "$claim" | grep -q "group=lab"; then
        fail xen-channel-group-not-given-by-dom0 "rogue did not claim lab (advert: ${claim:-none})"
    elif [ "$(event_field rogue frames channel of=stream)" != 0 ] || ! no_channel srv "$rogue_id" || ! no_channel rogue; then
        fail xen-channel-group-not-given-by-dom0 "rogue got a channel (share ${rshare:-?}%)"
    elif case " $srv_list " in *" $rogue_id="*) true ;; *) false ;; esac || [ "${rogue_list:-v1}" != v1 ]; then
        fail xen-channel-group-not-given-by-dom0 "dom0 listed rogue: srv's list ${srv_list:-none}, rogue's ${rogue_list:-none}"
    elif ! guest_event srv channel_up peer="$pol_id" || [ -z "$pshare" ] || ! at_least "$pshare" 99; then
        fail xen-channel-group-not-given-by-dom0 "pol, given lab by the policy, got no channel (share ${pshare:-?}%)"
    else
        ok xen-channel-group-not-given-by-dom0 "rogue ${rshare}% channel, pol ${pshare}%"
    fi
else
    guest_explain rogue; guest_explain pol; tail -5 "$DISCOVERYD_LOG"
    fail xen-channel-group-not-given-by-dom0 "a stream failed"
fi
guest_finish rogue
guest_finish pol
# Back to the daemon /init starts (no policy) for the rest.
discoveryd_stop
discoveryd_start

# 3. A transfer over the channel when the peer is destroyed: the server
#    logs the fallback and releases everything, and its connection with
#    dom0 (an 8 MiB echo running meanwhile) is not disturbed.
guest cli2 23 "app=rr net.group=lab net.peer=198.18.0.20 net.count=10000000"
cli2_id=$(domid cli2)
if wait_until 60 guest_event cli2 progress app=rr; then
    head -c 8388608 /dev/urandom > /tmp/dom0-in
    (timeout 300 nc 198.18.0.20 7 < /tmp/dom0-in > /tmp/dom0-out) &
    ncpid=$!
    sleep 1
    xl destroy cli2
    wait_gone cli2 10
    t0=$(now_ms)
    if wait_until 30 guest_event srv channel_closed peer="$cli2_id" && wait_until 30 guest_event srv channel_released peer="$cli2_id"; then
        t1=$(now_ms)
        wait $ncpid
        sent=$(sha256sum < /tmp/dom0-in | cut -d' ' -f1)
        back=$(sha256sum < /tmp/dom0-out | cut -d' ' -f1)
        guest_events srv channel_closed peer="$cli2_id"; guest_events srv channel_released peer="$cli2_id"
        echo "server noticed and released within $((t1 - t0)) ms of the destroy (dom0 clock)"
        if [ "$sent" = "$back" ]; then
            echo "dom0 <-> server echo during the destroy: 8 MiB, sha256 match"
            ok xen-channel-peer-destroyed-falls-back
        else
            fail xen-channel-peer-destroyed-falls-back "dom0's echo through the server broke ($(wc -c < /tmp/dom0-out) bytes back)"
        fi
    else
        wait $ncpid
        guest_explain srv; fail xen-channel-peer-destroyed-falls-back "the server did not close and release the channel"
    fi
    rm -f /tmp/dom0-in /tmp/dom0-out
else
    guest_explain cli2; fail xen-channel-peer-destroyed-falls-back "the rr client never ran"
    guest_finish cli2
fi

# 4. The peer comes back (a new domain): a new channel, and a new transfer
#    uses it.
guest cli3 24 "app=stream net.group=lab net.peer=198.18.0.20 net.bytes=16777216"
cli3_id=$(domid cli3)
if wait_until 300 ended cli3 && matched cli3 stream; then
    share=$(channel_share cli3 stream)
    guest_events cli3 stream
    if guest_event srv channel_up peer="$cli3_id" && [ -n "$share" ] && at_least "$share" 99; then
        echo "channel share of the new transfer: $share%"
        ok xen-channel-peer-recreated
    else
        fail xen-channel-peer-recreated "no new channel (share ${share:-?}%)"
    fi
else
    guest_explain cli3; fail xen-channel-peer-recreated "the transfer failed"
fi
guest_finish cli3

# 5. A channel that comes up while a stream runs over netfront takes over
#    its frames, and the stream goes on (verified). 256 MiB: long enough to
#    be running when its first progress line (after 5 s) starts the daemon,
#    now that netfront's offloads move 64 MiB in less.
discoveryd_stop
guest late 25 "app=stream net.group=lab net.peer=198.18.0.20 net.bytes=268435456"
if wait_until 90 guest_event late progress app=stream; then
    discoveryd_start
    if wait_until 300 ended late && matched late stream; then
        guest_events late stream
        guest_events late frames of=stream --last
        ch=$(event_field late frames channel of=stream)
        nf=$(event_field late frames netfront of=stream)
        if guest_event late channel_up peer="$srv_id" && [ "${ch:-0}" -gt 0 ] && [ "${nf:-0}" -gt 0 ]; then
            ok xen-channel-takes-over-a-running-stream
        else
            fail xen-channel-takes-over-a-running-stream "frames did not move to the channel (channel ${ch:-?}, netfront ${nf:-?})"
        fi
    else
        guest_explain late; fail xen-channel-takes-over-a-running-stream "the stream did not survive the switch"
    fi
else
    guest_explain late; guest_explain srv; fail xen-channel-takes-over-a-running-stream "the stream never started"
    discoveryd_start
fi
guest_finish late

# 6. The server shuts down cleanly: channels closed, every grant back.
needs
d=$srv_id
xenstore-write "/local/domain/$d/control/shutdown" poweroff
if wait_until 60 dom_shutdown srv && ! dom_crashed srv \
    && guest_event srv device_closed channels_released=true grant_refs=0 mapped=0 pages=0; then
    guest_events srv device_closed
    ok xen-channel-clean-shutdown
else
    guest_explain srv; fail xen-channel-clean-shutdown "no clean close on xl shutdown"
fi
guest_finish srv

# 7. The daemon ran through all of it, and the lists are gone with the guests.
if discoveryd_running && [ -z "$(xenstore-list /local/domain/0/cohort/peers 2>/dev/null)" ]; then
    grep -c "peers:" "$DISCOVERYD_LOG" | sed 's/^/discovery daemon: list updates published: /'
    ok xen-channel-daemon-survives
else
    tail -20 "$DISCOVERYD_LOG"
    fail xen-channel-daemon-survives "daemon down or stale lists: $(xenstore-list /local/domain/0/cohort/peers 2>&1)"
fi
