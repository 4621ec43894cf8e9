#!/bin/sh
# The measurement study's points in one lab boot (`./run.sh study`; the
# harness's src/study/ writes the plan, reads what this prints, keeps the
# points and writes the report).
#   cohort-study.sh PLAN [KERNEL] [POINT_TIMEOUT_S]
# PLAN has one point a line, tab-separated:
#   ID  SERVER-CMDLINE  CLIENT-CMDLINE  XL-EXTRA
# Per point: an echo/sink server guest (kept while the next point asks for
# the same server and xl lines) and a measuring client guest (app=stream or
# app=rr with net.reps=N), both under the virtual clock. Lines for the
# harness, one per figure and one at each point's end:
#   STUDY-BENCH ID BENCH {...}       the client's figures, as it printed them
#   STUDY-END ID ok                  or: STUDY-END ID fail REASON
# result: study-points   every point of the plan measured: its client ran to the end and reported success
# shellcheck source=../dom0/scenario-lib.sh
. /usr/share/cohort/scenario-lib.sh

plan=${1:-/cohort/study-plan.tsv}
kernel=${2:-/cohort/cohort}
point_timeout=${3:-600}
tab=$(printf '\t')

[ -f "$plan" ] || { fail study-points "no plan at $plan"; exit 0; }
discoveryd_running || discoveryd_start

# study_guest NAME LAST-OCTET CMDLINE XL-EXTRA: a Cohort guest on xenbr0.
study_guest() {
    cohort_cfg "$1" "$kernel" "net.ip=198.18.0.$2/15 bench.clock=virtual $3" "vif = [ \"bridge=xenbr0,mac=00:16:3e:c0:03:$2\" ]
$4"
}
server_alive() { dom_state srv | grep -q . && ! dom_shutdown srv && ! dom_crashed srv; }
# point_end ID ok|fail [REASON]
point_end() { echo "STUDY-END $*"; }

server_key=
total=$(grep -c . "$plan")
n=0 failed=0
while IFS=$tab read -r id server client xl <&3; do
    [ -n "$id" ] || continue
    n=$((n + 1))
    echo "study: point $n of $total: $id"
    # A new server when the point asks for another one, or the last died.
    if [ "$server|$xl" != "$server_key" ] || ! server_alive; then
        guest_finish srv
        server_key=
        study_guest srv 40 "app=echo $server" "$xl"
        if ! xl_create /tmp/srv.cfg || ! wait_until 60 guest_event srv address; then
            guest_explain srv; guest_finish srv
            point_end "$id" fail "the server guest has no address"; failed=$((failed + 1)); continue
        fi
        server_key="$server|$xl"
    fi
    study_guest cli 41 "$client net.peer=198.18.0.40" "$xl"
    if ! xl_create /tmp/cli.cfg; then
        point_end "$id" fail "xl create of the client failed"; failed=$((failed + 1)); continue
    fi
    needs srv
    if wait_quietly "$point_timeout" dom_shutdown cli && ! dom_crashed cli && wait_until 20 guest_event cli app ok=true; then
        guest_log cli | grep '^BENCH' | sed "s|^|STUDY-BENCH $id |"
        point_end "$id" ok
    else
        guest_explain cli
        point_end "$id" fail "the client did not finish (state $(dom_state cli))"
        failed=$((failed + 1))
    fi
    needs
    guest_finish cli
done 3< "$plan"
guest_finish srv

if [ "$failed" = 0 ] && [ "$n" -gt 0 ]; then
    ok study-points "$n points"
else
    fail study-points "$failed of $n points failed"
fi
