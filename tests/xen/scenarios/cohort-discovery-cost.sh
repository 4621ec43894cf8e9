#!/bin/sh
# What one scan of the discovery daemon costs dom0 against the number of
# domains (the study's question 2, which runs the same through
# cohort-study.sh): for N in 1 2 4 8 16 32, N fake Cohort guests of one
# group (scenario-lib's discovery_cost), then `cohort-discoveryd --once
# --clock virtual` REPS times after one warm-up run (dropped); each run
# times its one scan (from the domain list to the last peer list written)
# and prints it as a BENCH line. Lines for the harness:
#   STUDY-BENCH q2/discoveryd=N/discoveryd BENCH {...}   each run's figure
#   STUDY-END q2/discoveryd=N/discoveryd ok              or: fail REASON
#   cohort-discovery-cost.sh [REPS]   (default 5; run under -icount)
# result: discoveryd-cost   every scan looked at the N fakes and the real guests, and wrote each fake's peer list
# shellcheck source=../dom0/scenario-lib.sh
. /usr/share/cohort/scenario-lib.sh

reps=${1:-5}

# stats VALUES...: "median M (min-max A-B)" of the numbers.
stats() {
    printf '%s\n' "$@" | sort -n | awk '
        { v[NR] = $1 }
        END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
              printf "median %.1f us (min-max %.1f-%.1f)", m, v[1], v[NR] }'
}

[ -x "$DISCOVERYD" ] || { fail discoveryd-cost "no $DISCOVERYD in this dom0"; exit 0; }
failed='' summary=''
for n in 1 2 4 8 16 32; do
    if ! discovery_cost "q2/discoveryd=$n/discoveryd" $n "$reps"; then
        failed="domains=$n: $dcost_why"
        break
    fi
    # shellcheck disable=SC2086 # one value a word
    summary="$summary; N=$n $(stats $dcost_values)"
done
if [ -n "$failed" ]; then
    fail discoveryd-cost "$failed"
elif ! discoveryd_running; then
    fail discoveryd-cost "the daemon did not start again"
else
    ok discoveryd-cost "scan time over $reps runs each (virtual clock)${summary}"
fi
