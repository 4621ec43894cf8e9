#!/bin/sh
# What one scan of the discovery daemon costs dom0 against the number of
# domains (the study's question 2): for N in 1 2 4 8 16 32, N fake Cohort
# guests of one group, then `cohort-discoveryd --once --clock virtual`
# REPS times after one warm-up run (dropped); each run times its one scan
# (from the domain list to the last peer list written) and prints it as a
# BENCH line. The fakes are xenstore entries only (domids 1001 and up, which
# no domain has): a scan reads /local/domain, the adverts and dom0's vif
# backend entries, and never asks the hypervisor. The running daemon is
# stopped meanwhile and started again at the end. Lines for the harness:
#   STUDY-BENCH q2/discoveryd/domains=N BENCH {...}   each run's figure
#   STUDY-END q2/discoveryd/domains=N ok              or: fail REASON
#   cohort-discovery-cost.sh [REPS]   (default 5; run under -icount)
# result: discoveryd-cost   every scan looked at the N fakes and the real guests, and wrote each fake's peer list
# shellcheck source=../dom0/scenario-lib.sh
. /usr/share/cohort/scenario-lib.sh

reps=${1:-5}
group=dcost
FIRST=1001
peers_dir=/local/domain/0/cohort/peers
out=/tmp/discovery-cost.out

# fake_mac K
fake_mac() { printf '00:16:3e:c9:00:%02x' "$1"; }
# fake_add K: domain 1000+K as the toolstack and netback would leave it
# (the nodes a scan reads, and the usual ones around them), advertising
# itself in $group.
fake_add() {
    _d=$((FIRST - 1 + $1)) _mac=$(fake_mac "$1")
    _fe=/local/domain/$_d _be=/local/domain/0/backend/vif/$_d/0
    xenstore-write "$_fe/domid" "$_d" "$_fe/name" "dcost$1" \
        "$_fe/device/vif/0/backend" "$_be" "$_fe/device/vif/0/backend-id" 0 \
        "$_fe/device/vif/0/mac" "$_mac" "$_fe/device/vif/0/handle" 0 "$_fe/device/vif/0/state" 4 \
        "$_be/frontend" "$_fe/device/vif/0" "$_be/frontend-id" "$_d" "$_be/online" 1 "$_be/state" 4 \
        "$_be/script" /etc/xen/scripts/vif-cohort "$_be/mac" "$_mac" "$_be/bridge" xenbr0 \
        "$_be/handle" 0 "$_be/type" vif "$_be/hotplug-status" connected \
        "$_fe/data/cohort/advert" "version=1 group=$group mac=$_mac ipv4=198.18.9.$1"
}
# fake_paths PREFIX N: PREFIX/1001 ... PREFIX/(1000+N), one a line.
fake_paths() { _k=0; while [ $_k -lt "$2" ]; do echo "$1/$((FIRST + _k))"; _k=$((_k + 1)); done; }
# fakes_clean N: every node of the first N fakes, their lists included.
fakes_clean() {
    for _p in /local/domain /local/domain/0/backend/vif $peers_dir; do
        for _n in $(fake_paths "$_p" "$1"); do xenstore-rm "$_n" 2>/dev/null; done
    done
}
# lists_ok N: each of the N fakes has a list naming the others (at most 8,
# the daemon's bound).
lists_ok() {
    _want=$(($1 - 1)); [ $_want -gt 8 ] && _want=8
    # shellcheck disable=SC2046 # one path a word
    xenstore-read $(fake_paths $peers_dir "$1") > /tmp/discovery-cost.lists 2>&1 || return 1
    awk -v n="$1" -v want="$_want" '
        $1 == "v1" && NF == want + 1 { good++ }
        END { exit !(NR == n && good == n) }' /tmp/discovery-cost.lists
}
# stats VALUES...: "median M (min-max A-B)" of the numbers.
stats() {
    printf '%s\n' "$@" | sort -n | awk '
        { v[NR] = $1 }
        END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
              printf "median %.1f us (min-max %.1f-%.1f)", m, v[1], v[NR] }'
}

[ -x "$DISCOVERYD" ] || { fail discoveryd-cost "no $DISCOVERYD in this dom0"; exit 0; }
discoveryd_stop
# Real guests count too: the scan looks at every domain but dom0.
real=$(xenstore-list /local/domain | grep -cv '^0$')
made=0 failed='' summary=''
for n in 1 2 4 8 16 32; do
    id=q2/discoveryd/domains=$n
    while [ $made -lt $n ]; do
        made=$((made + 1))
        fake_add $made || { failed="xenstore-write of fake $made failed"; break; }
    done
    [ -n "$failed" ] && { echo "STUDY-END $id fail $failed"; break; }
    values='' why=''
    run=0
    while [ $run -le "$reps" ]; do
        timeout 60 "$DISCOVERYD" --once --clock virtual > $out 2>&1
        line=$(grep '^BENCH ' $out)
        path=$(printf '%s\n' "$line" | sed -n 's/.*"path":"\([^"]*\)".*/\1/p')
        value=$(printf '%s\n' "$line" | sed -n 's/.*"value":\([0-9.]*\),.*/\1/p')
        if [ "$(printf '%s\n' "$line" | grep -c .)" != 1 ] || [ -z "$value" ]; then
            why="run $run printed no BENCH line"
        elif [ "$path" != "domains-$((n + real))" ]; then
            why="run $run: $path, not domains-$((n + real)) ($n fakes, $real real guests)"
        elif ! lists_ok $n; then
            why="run $run did not write every fake's list: $(head -c 300 /tmp/discovery-cost.lists)"
        fi
        if [ -n "$why" ]; then
            echo "--- the daemon's output:"; tail -n 20 $out
            break
        fi
        # Each run starts without the fakes' lists, so each writes them all.
        # shellcheck disable=SC2046 # one path a word
        xenstore-rm $(fake_paths $peers_dir $n)
        # Run 0 is the warm-up.
        if [ $run -gt 0 ]; then
            echo "STUDY-BENCH $id $line"
            values="$values $value"
        fi
        run=$((run + 1))
    done
    if [ -n "$why" ]; then
        echo "STUDY-END $id fail $why"
        failed="domains=$n: $why"
        break
    fi
    echo "STUDY-END $id ok"
    # shellcheck disable=SC2086 # one value a word
    summary="$summary; N=$n $(stats $values)"
done
fakes_clean $made
discoveryd_start
if [ -n "$failed" ]; then
    fail discoveryd-cost "$failed"
elif ! discoveryd_running; then
    fail discoveryd-cost "the daemon did not start again"
else
    ok discoveryd-cost "scan time over $reps runs each (virtual clock, $real real guests)${summary}"
fi
