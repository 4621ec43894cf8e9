#!/bin/sh
# The measurement study's points in one lab boot (`./run.sh study`; the
# harness's src/study/ writes the plan, reads what this prints, keeps the
# points and writes the report).
#   cohort-study.sh PLAN [KERNEL] [POINT_TIMEOUT_S]
# PLAN has one point a line, tab-separated:
#   ID  SERVERS  CLIENT-CMDLINE  XL-EXTRA
# XL-EXTRA: lines for every guest's xl config, or `SERVER-XL;;CLIENT-XL`
# (vCPUs pinned apart); a leading `dom0-cpus=N ` pins dom0's vCPUs to pCPU N
# while the point's servers run (contention with dom0).
# SERVERS: each server's options after app=echo (or with their own app=),
# `;` between servers;
# Cohort server K (from 0, at most 8) is 198.18.0.(40+K), the client
# 198.18.0.49; a server `dom0` is netref's sink and echo in dom0 itself
# (198.18.0.1: question 1's remote peer with no channel).
# Per point: the echo/sink server guests (kept while the next point asks
# for the same servers and xl lines) and a measuring client guest (app=stream,
# maerts, rr, crr, udp-rr, iperf3-client, mix or handover, with
# net.reps=N), all under the
# virtual clock. A CLIENT-CMDLINE `boots=N ...` boots the client N times
# (N repetitions of what a guest measures once a boot). Lines
# for the harness, one per figure and one at each point's end:
#   STUDY-BENCH ID BENCH {...}       the client's figures, as it printed them
#   STUDY-END ID ok                  or: STUDY-END ID fail REASON
# A point whose SERVERS is `dom0:discoveryd-cost` runs no guest: CLIENT is
# `DOMAINS REPS` for scenario-lib's discovery_cost.
# Linux reference guests (question 1's remote peer, question 3's baseline;
# the lab's --linux-guest),
# PVH like the Cohort guests: a server `linux:[OPTS]` is the Linux server
# (netref, ref.role=serve: iperf3 -s, sink, echo) at 198.18.0.50, and
# CLIENT `linux:stream|iperf3|rr OPTS` a Linux client at 198.18.0.51
# (ref.role=client: ref.reps iperf3 tests, then ref.reps netref rr runs;
# `iperf3` with ref.role=iperf3 in OPTS: the iperf3 tests alone, against
# ref.peer); `stream` and `iperf3` relay its iperf3 reports as
# `net.iperf3_tcp` figures, `rr` its BENCH lines.
# result: study-points   every point of the plan measured: its client ran to the end and reported success
# shellcheck source=../dom0/scenario-lib.sh
. /usr/share/cohort/scenario-lib.sh

plan=${1:-/cohort/study-plan.tsv}
kernel=${2:-/cohort/cohort}
point_timeout=${3:-600}
tab=$(printf '\t')

LINUX_TYPE=pvh
[ -f "$plan" ] || { fail study-points "no plan at $plan"; exit 0; }
discoveryd_running || discoveryd_start

# study_guest NAME LAST-OCTET CMDLINE XL-EXTRA: a Cohort guest on xenbr0.
study_guest() {
    cohort_cfg "$1" "$kernel" "net.ip=198.18.0.$2/15 bench.clock=virtual $3" "vif = [ \"bridge=xenbr0,mac=00:16:3e:c0:03:$2\" ]
$4"
}
# servers_alive: every server of the last point still runs.
servers_alive() {
    for _s in $servers_up; do
        dom_state "$_s" | grep -q . && ! dom_shutdown "$_s" && ! dom_crashed "$_s" || return 1
    done
    [ -z "$dom0_server" ] || kill -0 "$dom0_server" 2>/dev/null
}
servers_finish() {
    for _s in $servers_up; do guest_finish "$_s"; done
    servers_up=
    if [ -n "$dom0_server" ]; then
        kill "$dom0_server" 2>/dev/null
        dom0_server=
    fi
    if [ -n "$dom0_pinned" ]; then
        xl vcpu-pin Domain-0 all all || echo "xl vcpu-pin Domain-0 all all failed"
        dom0_pinned=
    fi
}
DOM0_SERVER_LOG=/tmp/dom0-netref.log
# dom0_start: netref's sink (9) and echo (7) in dom0 itself, at xenbr0's
# 198.18.0.1 (a remote peer with no channel); false (said) unless both listen.
dom0_start() {
    netref serve 9 7 > "$DOM0_SERVER_LOG" 2>&1 &
    dom0_server=$!
    wait_until 10 "$COHORT_EVENT" "$DOM0_SERVER_LOG" listening service=echo 2>/dev/null \
        || { echo "netref did not listen in dom0"; quoted < "$DOM0_SERVER_LOG"; return 1; }
}
# linux_start OPTS: the Linux reference server (netref: iperf3 -s, sink,
# echo) at 198.18.0.50; false (said) unless its echo listens.
linux_start() {
    [ -f /cohort/linux/vmlinuz ] || { echo "no Linux guest in this lab (--linux-guest)"; return 1; }
    linux_cfg lsrv "ref.role=serve ref.ip=198.18.0.50/15 $1" 'vif = [ "bridge=xenbr0,mac=00:16:3e:c0:03:50" ]'
    servers_up="$servers_up lsrv"
    # Its iperf3 -s, sink and echo listen, the echo last.
    linux_up lsrv 300 listening service=echo || { guest_log lsrv | tail -15 | quoted; return 1; }
}
# servers_start SERVERS XL: starts each `;`-separated server: a Cohort
# guest srv0, srv1, ... (at 198.18.0.40, .41, ...), `linux:OPTS` the Linux
# server, `dom0` dom0's own; false (said) when one does not come up.
servers_start() {
    _k=0
    _rest=$1
    while [ -n "$_rest" ] && [ $_k -lt 8 ]; do
        _opts=${_rest%%;*}
        case $_rest in *\;*) _rest=${_rest#*;} ;; *) _rest= ;; esac
        case $_opts in
            linux:*) linux_start "${_opts#linux:}" || return 1; continue ;;
            dom0) dom0_start || return 1; continue ;;
        esac
        case " $_opts" in
            *" app="*) study_guest "srv$_k" $((40 + _k)) "$_opts" "$2" ;;
            *) study_guest "srv$_k" $((40 + _k)) "app=echo $_opts" "$2" ;;
        esac
        servers_up="$servers_up srv$_k"
        xl_create "/tmp/srv$_k.cfg" || return 1
        _k=$((_k + 1))
    done
    for _s in $servers_up; do
        [ "$_s" = lsrv ] && continue
        wait_until 60 guest_event "$_s" address || { guest_explain "$_s"; return 1; }
    done
}
# linux_client ID WHAT OPTS: a Linux client against the Linux server (OPTS
# may name another: ref.peer, ref.role=iperf3); its figures (WHAT: stream,
# iperf3 or rr) as STUDY-BENCH lines, and the point's end.
linux_client() {
    linux_cfg lcli "ref.role=client ref.ip=198.18.0.51/15 ref.peer=198.18.0.50 ref.path=netfront ref.clock=virtual $3" \
        'vif = [ "bridge=xenbr0,mac=00:16:3e:c0:03:51" ]'
    # shellcheck disable=SC2086 # one name a word
    needs $servers_up
    if linux_up lcli 300 address && wait_quietly "$point_timeout" dom_shutdown lcli \
        && guest_event lcli app ok=true; then
        _log=/var/log/xen/console/guest-lcli.log _bad=
        case $2 in
            stream|iperf3)
                _reps=$(echo " $3" | sed -n 's/.* ref\.reps=\([0-9]*\).*/\1/p')
                _i=1
                while [ "$_i" -le "${_reps:-0}" ]; do
                    if _bits=$("$COHORT_EVENT" --iperf3 "$_log" "$2-$_i" --get end.sum_received.bits_per_second); then
                        printf 'STUDY-BENCH %s BENCH {"name":"net.iperf3_tcp","path":"netfront","value":%s,"unit":"Mbit/s","clock":"virtual"}\n' \
                            "$1" "$(echo "$_bits" | awk '{ printf "%.3f", $1 / 1e6 }')"
                    else
                        echo "iperf3 report $2-$_i: $_bits"; _bad=1
                    fi
                    _i=$((_i + 1))
                done ;;
            rr) guest_log lcli | grep '^BENCH' | sed "s|^|STUDY-BENCH $1 |" ;;
            *) _bad=1 ;;
        esac
        if [ -z "$_bad" ]; then point_end "$1" ok; else point_end "$1" fail "a Linux figure did not pass its checks"; fi
    else
        guest_log lcli | tail -15 | quoted
        point_end "$1" fail "the Linux client did not finish (state $(dom_state lcli))"
        _bad=1
    fi
    needs
    guest_finish lcli
    [ -z "$_bad" ]
}
# client_boots ID N CMDLINE XL: the client N times, one after another,
# each to its end; its BENCH lines relayed as STUDY-BENCH ID. False, with
# $client_failed saying why, at the first that does not end well.
client_boots() {
    _b=1
    while [ "$_b" -le "$2" ]; do
        [ "$2" -gt 1 ] && echo "study: $1: client boot $_b of $2"
        # The first server, unless the client names its peer (a Cohort
        # client of the Linux server).
        case " $3" in
            *" net.peer="*) study_guest cli 49 "$3" "$4" ;;
            *) study_guest cli 49 "$3 net.peer=198.18.0.40" "$4" ;;
        esac
        if ! xl_create /tmp/cli.cfg; then
            client_failed="xl create of the client failed"
            return 1
        fi
        # shellcheck disable=SC2086 # one name a word
        needs $servers_up
        if wait_quietly "$point_timeout" dom_shutdown cli && ! dom_crashed cli && wait_until 20 guest_event cli app ok=true; then
            guest_log cli | grep '^BENCH' | sed "s|^|STUDY-BENCH $1 |"
        else
            guest_explain cli
            client_failed="the client did not finish (state $(dom_state cli))"
            needs
            guest_finish cli
            return 1
        fi
        needs
        guest_finish cli
        _b=$((_b + 1))
    done
}
# point_end ID ok|fail [REASON]
point_end() { echo "STUDY-END $*"; }

server_key=
servers_up=
dom0_server=
dom0_pinned=
total=$(grep -c . "$plan")
n=0 failed=0
while IFS=$tab read -r id server client xl <&3; do
    [ -n "$id" ] || continue
    n=$((n + 1))
    echo "study: point $n of $total: $id"
    # Work in dom0 alone (`dom0:WHAT`, CLIENT its arguments): no guest runs,
    # so the servers go first.
    case $server in
        dom0:discoveryd-cost)
            servers_finish
            server_key=
            # shellcheck disable=SC2086 # DOMAINS REPS
            discovery_cost "$id" $client || failed=$((failed + 1))
            continue ;;
        dom0:*)
            point_end "$id" fail "no such dom0 work: $server"; failed=$((failed + 1)); continue ;;
    esac
    # New servers when the point asks for others, or one of the last died.
    # XL: `[dom0-cpus=N ]SERVER-XL;;CLIENT-XL`, or one XL for both.
    dom0_cpus=
    case $xl in
        dom0-cpus=*)
            dom0_cpus=${xl%% *}
            dom0_cpus=${dom0_cpus#dom0-cpus=}
            xl=${xl#* } ;;
    esac
    case $xl in
        *';;'*) server_xl=${xl%%;;*} client_xl=${xl#*;;} ;;
        *) server_xl=$xl client_xl=$xl ;;
    esac
    if [ "$server|$xl|$dom0_cpus" != "$server_key" ] || ! servers_alive; then
        servers_finish
        server_key=
        if [ -n "$dom0_cpus" ]; then
            # Contention with dom0: its vCPUs on the guests' pCPU.
            xl vcpu-pin Domain-0 all "$dom0_cpus" || echo "xl vcpu-pin Domain-0 all $dom0_cpus failed"
            dom0_pinned=1
            # For people: the affinity dom0's vCPUs now have.
            xl vcpu-list Domain-0 | quoted
        fi
        if ! servers_start "$server" "$server_xl"; then
            servers_finish
            point_end "$id" fail "a server did not come up"; failed=$((failed + 1)); continue
        fi
        server_key="$server|$xl|$dom0_cpus"
    fi
    case $client in
        linux:*)
            _what=${client#linux:}
            linux_client "$id" "${_what%% *}" "${_what#* }" || failed=$((failed + 1))
            continue ;;
    esac
    # `boots=N CMDLINE`: the client booted N times, its figures of each
    # boot relayed (what a guest measures once a boot: detection).
    boots=1
    case $client in
        boots=*)
            boots=${client%% *}
            boots=${boots#boots=}
            client=${client#* } ;;
    esac
    case $boots in
        '' | *[!0-9]* | 0)
            point_end "$id" fail "bad boots=$boots"; failed=$((failed + 1)); continue ;;
    esac
    if client_boots "$id" "$boots" "$client" "$client_xl"; then
        point_end "$id" ok
    else
        point_end "$id" fail "$client_failed"
        failed=$((failed + 1))
    fi
done 3< "$plan"
servers_finish

if [ "$failed" = 0 ] && [ "$n" -gt 0 ]; then
    ok study-points "$n points"
else
    fail study-points "$failed of $n points failed"
fi
