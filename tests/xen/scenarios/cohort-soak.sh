#!/bin/sh
# Churn soak under real Xen: two servers (app=echo, groups lab and lab2)
# and three client slots. Every few seconds, at random (a seeded PRNG: the
# seed is printed, SEED repeats a run's choices), a slot gets a new client
# (a SHA-256-checked stream, 2 MiB at a time, or request/response, against
# one of the servers, in that server's group), or its client is destroyed
# (`xl destroy`), or shut down (a PV poweroff request: a clean close), or the
# discovery daemon is restarted. Every stream a client completed must
# match (EVENT stream "match":true); no guest may crash; and the servers'
# counts (EVENT resources, printed after every channel_released) are
# sampled every minute, and compared between a first and a last client
# cycle run alone against each server: grant refs, ports, mapped and
# granted pages and frames equal, the heap within HEAP_SLACK bytes.
#   cohort-soak.sh [KERNEL] [MINUTES] [SEED]   (default /cohort/cohort, 30, from the clock)
# result: xen-soak-no-bytes-lost   every completed stream matched (SHA-256)
# result: xen-soak-no-crashes      no guest crashed
# result: xen-soak-shutdowns-honoured  every client asked to power off did so within 60 s
# result: xen-soak-memory-flat     the servers' counts after the churn equal those before it
# shellcheck source=../dom0/scenario-lib.sh
. /usr/share/cohort/scenario-lib.sh

kernel=${1:-/cohort/cohort}
minutes=${2:-30}
seed=${3:-$(($(now_ms) % 1000000))}
seed0=$seed
HEAP_SLACK=16384
SLOTS="1 2 3"

# rnd N: R = a number in [0, N) (an LCG; busybox sh has 64-bit arithmetic).
rnd() {
    seed=$(((seed * 1103515245 + 12345) % 2147483648))
    R=$((seed / 65536 % $1))
}
echo "soak: seed $seed, $minutes minutes"

# The servers: s1 in group lab, s2 in group lab2.
srv_ip() { echo "198.18.0.$((70 + $1))"; }
srv_group() { [ "$1" = 1 ] && echo lab || echo lab2; }
# The counts of the first `resources` event after the channel_released
# for dom$2 on s$1: grant_refs ports mapped pages heap_used frames
# netfront_refs (the last varies with transmits in flight: not compared).
COUNT_FIELDS=grant_refs,ports,mapped,pages,heap_used,frames,netfront_refs
counts_after() { cohort_event "s$1" resources --after "channel_released peer=$2" --first --get "$COUNT_FIELDS"; }
has_counts_after() { [ -n "$(counts_after "$1" "$2")" ]; }
# The last counts s$1 printed.
last_counts() { cohort_event "s$1" resources --last --get "$COUNT_FIELDS"; }

gen=0
# new_client NAME KIND SERVER: a client guest with an address and MAC of
# its own (a re-created guest with an earlier one's address would reuse
# its ports; see cohort-cycles.sh).
new_client() {
    gen=$((gen + 1))
    _hi=$((gen / 250)); _lo=$((gen % 250 + 1))
    _ip=198.18.$((8 + _hi)).$_lo
    _mac=$(printf '00:16:3e:c4:%02x:%02x' "$_hi" "$_lo")
    case $2 in
        stream) _app="app=stream net.bytes=2097152 net.reps=100 net.check=sha256" ;;
        *) _app="app=rr net.count=10000000" ;;
    esac
    cohort_cfg "$1" "$kernel" "net.ip=$_ip/15 $_app net.group=$(srv_group "$3") net.peer=$(srv_ip "$3")" \
        "vif = [ \"bridge=xenbr0,mac=$_mac\" ]"
    xl_create "/tmp/$1.cfg"
}

# Totals.
started=0; destroyed=0; shutdowns=0; missed_shutdowns=0; clean_closes=0; restarts=0; ended_alone=0
streams=0; matched=0; bytes=0; mismatches=0; rr_done=0; app_errors=0; crashes=0; crashed_seen=
# harvest NAME: adds what a client's console says to the totals (after it
# is gone or powered off; xenconsoled keeps the log).
harvest() {
    _log=/tmp/soak-$1.log
    guest_log "$1" > "$_log"
    _s=$(logged stream --count)
    _m=$(logged stream match=true --count)
    _b=$(logged stream match=true --get bytes | awk '{ s += $1 } END { printf "%d", s }')
    streams=$((streams + _s)); matched=$((matched + _m)); bytes=$((bytes + _b))
    if [ "$_s" != "$_m" ]; then
        mismatches=$((mismatches + _s - _m))
        echo "soak: $1: MISMATCH:"; logged stream match=false
    fi
    _r=$(logged progress app=rr --last --get "done")
    rr_done=$((rr_done + ${_r:-0}))
    logged device_closed device=netfront clean=true >/dev/null && clean_closes=$((clean_closes + 1))
    if logged app ok=false >/dev/null; then
        app_errors=$((app_errors + 1))
        echo "soak: $1: the app failed: $(logged app ok=false --last)"
    fi
}
# logged KIND [...]: cohort-event on the log harvest kept.
logged() { "$COHORT_EVENT" "$_log" "$@" 2>/dev/null; }

# One `xl list` a round (each `xl` call is a process under emulation,
# seconds when the lab is busy); STATE NAME reads it: empty when gone.
snapshot() { XL_LIST=$(xl list 2>/dev/null); }
state_of() { printf '%s\n' "$XL_LIST" | awk -v n="$1" '$1 == n { print $5 }'; }

# Crashed or triple-faulted: explained (a LAB FAULT line when it is the
# lab's), counted, destroyed.
check_crash() {
    if dom_crashed "$1"; then
        # A crashed server stays in the list: counted once (by domid).
        _key="$1:$(xl domid "$1" 2>/dev/null)"
        case " $crashed_seen " in *" $_key "*) return 0 ;; esac
        crashed_seen="$crashed_seen $_key"
        crashes=$((crashes + 1))
        echo "soak: $1 CRASHED ($(dom_state "$1"))"
        guest_explain "$1"
        return 0
    fi
    return 1
}

# slot_act SLOT: one random step for a client slot (by the round's
# snapshot).
slot_act() {
    _n=c$1
    _st=$(state_of "$_n")
    if [ -z "$_st" ]; then
        rnd 2; [ "$R" = 0 ] && _k=stream || _k=rr
        rnd 2; _srv=$((R + 1))
        if new_client "$_n" "$_k" "$_srv"; then
            started=$((started + 1))
            echo "soak: $_n: new $_k client dom$(xl domid "$_n" 2>/dev/null) of s$_srv"
        fi
        return
    fi
    case $_st in
        *c* | *sr*) return ;; # check_crashes has it
        *s*)
            # It ended by itself (or after our shutdown).
            ended_alone=$((ended_alone + 1))
            xl destroy "$_n"; wait_gone "$_n" 30; harvest "$_n"; return ;;
    esac
    rnd 10
    case $R in
        0 | 1 | 2)
            echo "soak: $_n: xl destroy"
            xl destroy "$_n"; wait_gone "$_n" 30
            destroyed=$((destroyed + 1)); harvest "$_n" ;;
        3)
            # What `xl shutdown` asks of a PV guest, written directly: xl
            # looks for a feature-poweroff key first.
            echo "soak: $_n: shutdown (control/shutdown = poweroff)"
            xenstore-write "/local/domain/$(xl domid "$_n")/control/shutdown" poweroff
            shutdowns=$((shutdowns + 1))
            if wait_until 60 dom_shutdown "$_n"; then
                check_crash "$_n" || true
            else
                echo "soak: $_n: did not shut down within 60 s"
                missed_shutdowns=$((missed_shutdowns + 1))
            fi
            xl destroy "$_n"; wait_gone "$_n" 30; harvest "$_n" ;;
        *) ;;
    esac
}

# One client cycle alone against s$1 (before and after the churn): a
# stream client comes up, gets its channel, streams, is destroyed; COUNTS:
# s$1's counts after the release.
alone_cycle() {
    COUNTS=
    new_client w "stream" "$1" || { echo "soak: alone cycle $1: xl create of the client failed"; return 1; }
    _id=$(xl domid w)
    wait_until 60 guest_event "s$1" channel_up peer="$_id" \
        || { echo "soak: alone cycle $1: no channel from s$1 to dom$_id in 60 s"; guest_explain w; return 1; }
    wait_until 120 guest_event w stream \
        || { echo "soak: alone cycle $1: no stream from dom$_id in 120 s"; guest_explain w; return 1; }
    xl destroy w; wait_gone w 30
    harvest w
    wait_until 60 has_counts_after "$1" "$_id" \
        || { echo "soak: alone cycle $1: s$1 printed no counts after dom$_id went, in 60 s"; guest_explain "s$1"; return 1; }
    COUNTS=$(counts_after "$1" "$_id")
}

# Crashed guests now (one `xl list`): explained, counted; a client is
# destroyed and its slot freed.
check_crashes() {
    for _n in $(printf '%s\n' "$XL_LIST" | awk 'NR > 1 && ($5 ~ /c/ || $5 ~ /sr/) { print $1 }'); do
        check_crash "$_n" || continue
        case $_n in
            s[12]) end=0 ;;
            *) xl destroy "$_n"; wait_gone "$_n" 30; harvest "$_n" ;;
        esac
    done
}

# Servers' counts, for a progress line.
sample() {
    for _s in 1 2; do
        # shellcheck disable=SC2046 # seven numbers, as words
        set -- $(last_counts "$_s")
        printf ' s%s: grant_refs %s ports %s mapped %s pages %s heap_used %s frames %s netfront_refs %s;' "$_s" "${1:-?}" "${2:-?}" "${3:-?}" "${4:-?}" "${5:-?}" "${6:-?}" "${7:-?}"
    done
}

discoveryd_running || discoveryd_start || { fail xen-soak-no-bytes-lost "no discovery daemon"; exit 0; }
for s in 1 2; do
    cohort_cfg "s$s" "$kernel" "net.ip=$(srv_ip $s)/15 app=echo net.group=$(srv_group $s)" "vif = [ \"bridge=xenbr0,mac=00:16:3e:c0:05:7$s\" ]"
    xl_create "/tmp/s$s.cfg" || { fail xen-soak-no-bytes-lost "xl create s$s failed"; exit 0; }
done
for s in 1 2; do
    if ! wait_until 60 guest_event "s$s" address; then
        guest_explain "s$s"; fail xen-soak-no-bytes-lost "server s$s never got its address"; exit 0
    fi
done
if alone_cycle 1; then before1=$COUNTS; fi
if alone_cycle 2; then before2=$COUNTS; fi
if [ -z "${before1:-}" ] || [ -z "${before2:-}" ]; then
    _which=1; [ -n "${before1:-}" ] && _which=2
    fail xen-soak-memory-flat "the first client cycle alone with s$_which failed (why above)"; exit 0
fi
echo "soak: before the churn: s1 $before1; s2 $before2"

t0=$(now_ms)
end=$((t0 + minutes * 60000))
next_minute=1
while [ "$(now_ms)" -lt "$end" ]; do
    snapshot
    check_crashes
    for s in 1 2; do
        case $(state_of "s$s") in
            '' | *s*) echo "soak: server s$s ended ($(state_of "s$s"))"; end=0 ;;
        esac
    done
    [ "$end" = 0 ] && break
    rnd 20
    if [ "$R" = 0 ]; then
        echo "soak: restarting the discovery daemon"
        discoveryd_stop
        rnd 4; sleep "$R"
        discoveryd_start
        restarts=$((restarts + 1))
    else
        rnd 3
        slot_act $((R + 1))
    fi
    rnd 4; sleep $((R + 1))
    t=$(now_ms)
    if [ $((t - t0)) -ge $((next_minute * 60000)) ]; then
        echo "soak: minute $next_minute of $minutes: $started clients started, $destroyed destroyed, $shutdowns shut down ($clean_closes clean closes), $ended_alone ended, $restarts daemon restarts; streams $streams, $matched matched, $bytes bytes; rr transactions $rr_done; crashes $crashes; memory:$(sample)"
        next_minute=$((next_minute + 1))
    fi
done

# The churn ends: every client destroyed, the daemon up, then the last
# lone cycle against each server.
for slot in $SLOTS; do
    if ! dom_gone "c$slot"; then
        check_crash "c$slot" || true
        xl destroy "c$slot"; wait_gone "c$slot" 30; harvest "c$slot"
    fi
done
discoveryd_running || discoveryd_start
sleep 5
if alone_cycle 1; then after1=$COUNTS; fi
if alone_cycle 2; then after2=$COUNTS; fi
[ -n "${after1:-}" ] && [ -n "${after2:-}" ] || after_failed=1
t1=$(now_ms)
echo "soak: $(((t1 - t0) / 1000)) s of churn, seed $seed0: $started clients started, $destroyed destroyed, $shutdowns shut down ($clean_closes clean closes), $ended_alone ended, $restarts daemon restarts"
echo "soak: streams $streams, $matched matched, $bytes bytes verified; mismatches $mismatches; rr transactions $rr_done; app errors $app_errors; crashes $crashes"
echo "soak: servers' counts before: s1 $before1; s2 $before2"
echo "soak: servers' counts after:  s1 ${after1:-?}; s2 ${after2:-?}"
echo "soak: (grant_refs ports mapped pages heap_used frames netfront_refs)"

if [ "$mismatches" = 0 ] && [ "$streams" -gt 0 ]; then
    ok xen-soak-no-bytes-lost "$streams streams, $bytes bytes, all matched; $rr_done rr transactions"
else
    fail xen-soak-no-bytes-lost "$mismatches of $streams streams did not match"
fi
snapshot
check_crashes
if [ "$crashes" = 0 ]; then
    ok xen-soak-no-crashes "$started clients, $destroyed destroyed, $shutdowns shut down, $restarts daemon restarts"
else
    fail xen-soak-no-crashes "$crashes guests crashed"
fi
if [ "$missed_shutdowns" = 0 ]; then
    ok xen-soak-shutdowns-honoured "$shutdowns poweroff requests, each honoured within 60 s"
else
    fail xen-soak-shutdowns-honoured "$missed_shutdowns of $shutdowns clients did not power off within 60 s of the request"
fi
# flat BEFORE AFTER: the counts equal, the heap within HEAP_SLACK.
flat() {
    # shellcheck disable=SC2086 # seven numbers each, as words
    set -- $1 $2
    [ $# = 14 ] && [ "$1 $2 $3 $4 $6" = "$8 $9 ${10} ${11} ${13}" ] &&
        [ $(($5 - ${12})) -le "$HEAP_SLACK" ] && [ $((${12} - $5)) -le "$HEAP_SLACK" ]
}
if [ -n "${after_failed:-}" ]; then
    fail xen-soak-memory-flat "the last client cycle alone failed"
elif flat "$before1" "$after1" && flat "$before2" "$after2"; then
    ok xen-soak-memory-flat "s1 $before1 -> $after1; s2 $before2 -> $after2"
else
    fail xen-soak-memory-flat "s1 $before1 -> $after1; s2 $before2 -> $after2 (grant_refs ports mapped pages heap_used frames netfront_refs)"
fi
guest_finish s1
guest_finish s2
