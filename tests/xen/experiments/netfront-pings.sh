#!/bin/sh
# Experiment (not a test): how often a fresh Cohort guest's netfront is
# deaf (dom0 never handles its notifications; issue 14), by guest type.
# ROUNDS rounds; each boots the echo guest once per arm, waits for its
# address and pings it once (1 s). A guest that does not answer has Xen's
# view of its event channels shown at once, then: `restarted` if its
# netfront's watchdog connected it again and it answers, `slow` if it
# answers without that, `deaf` if it never does (guest_explain: netback's
# rings, the kick). The first round also shows a healthy guest's event
# channels, for comparison. One NFPING {json} line per boot, then a
# summary:
#   cargo run -q -p cohort-harness -- lab --cohort --timeout 3000 \
#       --scenario-timeout 2900 --scenario "tests/xen/experiments/netfront-pings.sh 40"
# result: netfront-pings-experiment   the counts per arm (passes when it ran)
# shellcheck source=../dom0/scenario-lib.sh
. /usr/share/cohort/scenario-lib.sh

ROUNDS=${1:-20}
ARMS=${2:-pv pvh}
summary=
for arm in $ARMS; do eval "answered_$arm=0 slow_$arm=0 restarted_$arm=0 deaf_$arm=0 silent_$arm=0"; done
# count VAR: VAR + 1.
count() { eval "$1=\$((\$$1 + 1))"; }
r=1
while [ "$r" -le "$ROUNDS" ]; do
    for arm in $ARMS; do
        COHORT_TYPE=$arm
        cohort_cfg echo /cohort/cohort "app=echo net.ip=198.18.0.10/15 net.port=7" \
            'vif = [ "bridge=xenbr0,mac=00:16:3e:c0:00:10" ]'
        xl_create /tmp/echo.cfg >/dev/null 2>&1
        if ! wait_until 60 guest_event echo address ip=198.18.0.10; then
            outcome="no-address:$(dom_state echo)"; count "silent_$arm"
            guest_explain echo
        elif ping -c 1 -W 1 198.18.0.10 >/dev/null 2>&1; then
            outcome=answered; count "answered_$arm"
            # Once per arm, what a healthy guest's channels look like.
            [ "$r" = 1 ] && evtchn_explain "$(xl domid echo)"
        else
            # Xen's view at once, before netfront's watchdog (2 s of
            # unanswered transmits) connects it again.
            evtchn_explain "$(xl domid echo)"
            if wait_until 10 guest_event echo netfront_restarted ok=true && ping -c 3 -W 5 198.18.0.10 >/dev/null 2>&1; then
                outcome=restarted; count "restarted_$arm"
            elif ping -c 3 -W 5 198.18.0.10 >/dev/null 2>&1; then
                outcome=slow; count "slow_$arm"
            else
                outcome=deaf; count "deaf_$arm"
                guest_explain echo
            fi
        fi
        # --count prints 0 (and fails) when there is none.
        restarts=$(cohort_event echo netfront_restarted --count 2>/dev/null)
        echo "NFPING {\"round\":$r,\"arm\":\"$arm\",\"domid\":$(xl domid echo 2>/dev/null || echo null),\"outcome\":\"$outcome\",\"netfront_restarts\":${restarts:-0}}"
        guest_finish echo
    done
    r=$((r + 1))
done
for arm in $ARMS; do
    eval "summary=\"\$summary $arm answered=\$answered_$arm slow=\$slow_$arm restarted=\$restarted_$arm deaf=\$deaf_$arm no-address=\$silent_$arm;\""
done
echo "NFPING-SUMMARY$summary"
ok netfront-pings-experiment "$summary"
