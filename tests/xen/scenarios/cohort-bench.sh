#!/bin/sh
# Cohort's Xen benchmarks; every figure is a BENCH line on this console.
#   cohort-bench.sh CLOCK [KERNEL]   CLOCK: wall, or virtual under -icount
. /usr/share/cohort/scenario-lib.sh

clock=${1:-wall}
kernel=${2:-/cohort/cohort}
guest() { cohort_cfg "$1" "$kernel" "$2 bench.clock=$clock"; }
log() { guest_log "$1"; }
# figures NAME LAST: the guest's BENCH lines, once xenconsoled has logged LAST.
figures() { wait_until 20 console_has "$1" "$2"; log "$1" | grep '^BENCH'; }
bench() { printf 'BENCH {"name":"%s","path":"xen","value":%s,"unit":"%s","clock":"%s"}\n' "$1" "$2" "$3" "$clock"; }
finish() { guest_finish "$1"; }

# xl create -> Cohort's kernel_main, seen as its port-0xe9 line in `xl dmesg`
# (dom0's clock; the poll adds up to 5 ms). Median of 5 guests.
guest boot "bench=boot"
times=""
for i in 1 2 3 4 5; do
    rm -f /var/log/xen/console/guest-boot.log
    t0=$(now_ms)
    xl_create /tmp/boot.cfg
    n=0 d=$(xl domid boot)
    until xl dmesg | grep -q "(d$d) Cohort .*kernel_main"; do
        n=$((n + 1)); [ $n -gt 6000 ] && { fail xen-bench-boot "no banner"; exit 0; }
        sleep 0.005
    done
    t1=$(now_ms)
    times="$times $((t1 - t0))"
    wait_until 30 dom_shutdown boot
    [ "$i" = 5 ] && figures boot image.loaded_size | sed 's/"path":"boot"/"path":"xen-pvh"/'
    finish boot
done
median=$(echo $times | tr ' ' '\n' | sort -n | sed -n 3p)
echo "xl create -> banner, ms:$times"
bench xl_create_to_kernel_main "$median" ms
ok xen-bench-boot

guest prims "bench=xen"
xl_create /tmp/prims.cfg
if wait_until 60 dom_shutdown prims && figures prims hypercall_round_trip | grep -q hypercall_round_trip; then
    figures prims hypercall_round_trip; ok xen-bench-primitives
else
    log prims | grep -v INFO | tail; fail xen-bench-primitives "no figures"
fi
finish prims

guest ping "bench=evtchn_ping"
guest pong "bench=evtchn_pong"
xl_create /tmp/ping.cfg -p && xl_create /tmp/pong.cfg -p
a=$(xl domid ping) b=$(xl domid pong)
xenstore-write "/local/domain/$a/data/peer" "$b" "/local/domain/$b/data/peer" "$a"
xl unpause ping; xl unpause pong
if wait_until 300 dom_shutdown ping && figures ping notify_to_remote_handler | grep -q notify_to_remote; then
    figures ping notify_to_remote_handler; figures pong grant_map_unmap; ok xen-bench-evtchn
else
    log ping | grep -v INFO | tail; log pong | grep -v INFO | tail; fail xen-bench-evtchn "no figures"
fi
finish ping; finish pong

