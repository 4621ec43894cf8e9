#!/bin/sh
# Experiment (not a test): how often Debian's kernel, as a Linux reference
# guest, crashes while booting in this lab, by guest type and command line.
# ROUNDS rounds; each boots one guest per arm, in turn, and waits for its
# `address` event or its end. One LXBOOT {json} line per boot, then a
# summary. Needs the lab's --cohort (cohort-event) and --linux-guest:
#   tests/xen/boot.sh --cohort --linux-guest --timeout 3000 \
#       --scenario-timeout 2900 --scenario "tests/xen/experiments/linux-boots.sh 6"
# result: linux-boots-experiment   the counts per arm (passes when it ran)
# shellcheck source=../dom0/scenario-lib.sh
. /usr/share/cohort/scenario-lib.sh

ROUNDS=${1:-10}
ARMS="pvh pvh-pcioff pv"
summary=
# key ARM: ARM as part of a variable name.
key() { echo "$1" | tr -d -; }
for arm in $ARMS; do eval "booted_$(key "$arm")=0 failed_$(key "$arm")=0"; done
# count VAR: VAR + 1.
count() { eval "$1=\$((\$$1 + 1))"; }
r=1
while [ "$r" -le "$ROUNDS" ]; do
    for arm in $ARMS; do
        case $arm in
            pvh) type=pvh extra= ;;
            pvh-pcioff) type=pvh extra=pci=off ;;
            pv) type=pv extra= ;;
        esac
        k=$(key "$arm")
        name=lx$k
        linux_cfg "$name" "ref.ip=198.18.0.90/15 ref.role=serve $extra" 'vif = [ "bridge=xenbr0,mac=00:16:3e:c0:04:90" ]'
        sed -i "s/^type = .*/type = \"$type\"/" "/tmp/$name.cfg"
        t0=$(date +%s)
        xl_create "/tmp/$name.cfg" >/dev/null 2>&1
        wait_until 300 event_or_end "$name" address
        t1=$(date +%s)
        if guest_event "$name" address; then
            outcome=booted; count "booted_$k"
        else
            outcome="ended:$(dom_state "$name")"; count "failed_$k"
            xl dmesg | grep -A4 "Triple fault" | grep RIP | tail -n1
            guest_log "$name" | tail -n 5 | quoted
        fi
        echo "LXBOOT {\"round\":$r,\"arm\":\"$arm\",\"outcome\":\"$outcome\",\"secs\":$((t1 - t0))}"
        guest_finish "$name"
        xl dmesg -c >/dev/null 2>&1
    done
    r=$((r + 1))
done
for arm in $ARMS; do
    k=$(key "$arm")
    eval "summary=\"\$summary $arm booted=\$booted_$k failed=\$failed_$k;\""
done
echo "LXBOOT-SUMMARY$summary"
ok linux-boots-experiment "$summary"
