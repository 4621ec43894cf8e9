#!/bin/sh
# What `./run.sh` shows: two Cohort guests of one group on this Xen host.
# The second measures a TCP stream and request/response transactions with
# the first, over their shared-memory channel and then over netfront (the
# path through dom0's bridge), and the table at the end puts them side by
# side.
#   cohort-demo.sh [KERNEL] [BYTES] [TRANSACTIONS] [EXTRA-CMDLINE] [EXTRA-XL-CONFIG]
# Both guests run on CPU 1 unless EXTRA-XL-CONFIG says otherwise: under
# -icount QEMU runs the emulated CPUs in turn on one host thread, so two
# guests on two emulated CPUs do not run side by side, they wait for each
# other's turn (README, "Where request/response time goes").
# shellcheck source=../dom0/scenario-lib.sh
. /usr/share/cohort/scenario-lib.sh

kernel=${1:-/cohort/cohort}
bytes=${2:-16777216}
count=${3:-1000}
extra=${4:-}
xlextra=${5:-cpus = \"1\"}
demo_guest() {
    cohort_cfg "$1" "$kernel" "net.ip=198.18.0.$2/15 net.group=demo $extra $3" "vif = [ \"bridge=xenbr0,mac=00:16:3e:c0:03:$2\" ]
$xlextra"
    xl_create "/tmp/$1.cfg"
}
discoveryd_running || discoveryd_start || { fail cohort-demo "no discovery daemon in dom0"; exit 0; }

echo "demo: starting guest 'alpha' (TCP echo and stream sink)"
demo_guest alpha 40 "app=echo"
wait_until 60 guest_event alpha address || { guest_explain alpha; fail cohort-demo "alpha got no address"; exit 0; }
echo "demo: starting guest 'beta' (netbench against alpha: $bytes-byte streams, $count transactions)"
demo_guest beta 41 "app=netbench net.peer=198.18.0.40 net.bytes=$bytes net.count=$count"
# Progress: beta's lines as they come.
shown=0
while ! dom_shutdown beta; do
    n=$(guest_log beta | grep -cE "channel to|^stream:|^rr:|^netbench:")
    if [ "$n" -gt "$shown" ]; then
        guest_log beta | grep -E "channel to|^stream:|^rr:|^netbench:" | sed -n "$((shown + 1)),${n}p" | sed 's/^\[[^]]*\] *[A-Z]* *[a-z:_]* */  beta: /; s/^\([a-z]\)/  beta: \1/'
        shown=$n
    fi
    # Once a second: dom0's own work takes CPU time from the guests
    # (see wait_quietly).
    sleep 1
    [ "$(now_ms)" -gt 900000 ] && break
done
echo "demo: what dom0's discovery daemon published (its log):"
grep -E "peers:|not listed" "$DISCOVERYD_LOG" | tail -n 4 | sed 's/^/  /'
figure() { figure_value beta "$1" "$2"; }
s_ch=$(figure net.tcp_stream channel) s_nf=$(figure net.tcp_stream netfront)
r_ch=$(figure net.tcp_rr channel) r_nf=$(figure net.tcp_rr netfront)
l_ch=$(figure net.tcp_rr_latency_p50 channel) l_nf=$(figure net.tcp_rr_latency_p50 netfront)
p_ch=$(figure net.tcp_rr_latency_p99 channel) p_nf=$(figure net.tcp_rr_latency_p99 netfront)
m_ch=$(figure net.tcp_rr_latency_mean channel) m_nf=$(figure net.tcp_rr_latency_mean netfront)
up=$(figure channel.up_after_boot channel) sw=$(figure channel.switch_to_netfront netfront)
clock=$(cohort_event beta bench --first --get clock)
if guest_event beta netbench && [ -n "$s_ch" ] && [ -n "$s_nf" ] && [ -n "$r_ch" ] && [ -n "$r_nf" ] && ! dom_crashed beta; then
    echo
    config=$(guest_log beta | sed -n 's/.*channels: \(.*\)$/\1/p' | head -n1)
    echo "Same transfer, same two guests, two paths ($clock clock; Xen nested in QEMU TCG):"
    [ "$clock" = virtual ] && echo "  (virtual time: QEMU -icount, one emulated instruction = 1 ns, whatever the host's speed or load)"
    echo "  channel: $config; $(echo "$xlextra" | grep -q 'cpus = "1"' && echo 'both guests on CPU 1' || echo "xl: $xlextra")"
    awk -v sc="$s_ch" -v sn="$s_nf" -v rc="$r_ch" -v rn="$r_nf" -v lc="$l_ch" -v ln="$l_nf" \
        -v pc="$p_ch" -v pn="$p_nf" -v mc="$m_ch" -v mn="$m_nf" 'BEGIN {
        printf "  %-24s %16s %16s %8s\n", "", "shared memory", "netfront", "ratio"
        printf "  %-24s %11.1f Mbit/s %11.1f Mbit/s %7.1fx\n", "TCP stream", sc, sn, sc / sn
        printf "  %-24s %13.0f /s %13.0f /s %7.1fx\n", "TCP request/response", rc, rn, rc / rn
        printf "  %-24s %13.1f us %13.1f us\n", "  round trip p50", lc, ln
        printf "  %-24s %13.1f us %13.1f us\n", "  round trip p99", pc, pn
        printf "  %-24s %13.1f us %13.1f us\n", "  round trip mean", mc, mn
    }'
    echo "  channel up ${up} ms after beta booted; switching a running stream to netfront: ${sw} ms"
    ok cohort-demo
else
    guest_explain beta; fail cohort-demo "netbench did not report both paths"
fi
guest_finish beta
guest_finish alpha
