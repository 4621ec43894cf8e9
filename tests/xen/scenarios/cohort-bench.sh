#!/bin/sh
# Cohort's Xen benchmarks; every figure is a BENCH line on this console.
#   cohort-bench.sh CLOCK [KERNEL] [quick|types]   CLOCK: wall, or virtual under -icount
# quick: without the kernel benchmarks, the netbench configurations and the
# departure measurement, and with 1 MiB streams and 20 request/response
# transactions (the rest: iperf3, dom0's streams, the Linux reference), to
# check those parts of this script in a shorter lab run; its figures are
# not comparable with a full run's.
# types: only the guest-type comparison (PVH against PV: the Xen
# primitives, the event-channel pair, netbench's default and pv), in
# a shorter lab run; its figures are a full run's.
# shellcheck source=../dom0/scenario-lib.sh
. /usr/share/cohort/scenario-lib.sh

clock=${1:-wall}
# Linux against Cohort as the same guest type under the virtual clock.
# Under the wall clock (multi-threaded TCG) PVH Linux triple-faults often
# in this lab (QEMU's nested SVM; README, "What the nested lab taught
# us"), booting and running: a PV guest enters no nested SVM, so the
# Linux reference guests run as PV there (the report says so).
LINUX_TYPE=pvh
[ "$clock" = wall ] && LINUX_TYPE=pv
kernel=${2:-/cohort/cohort}
scope=${3:-all}
full() { [ "$scope" = all ]; }
types() { [ "$scope" = types ]; }
# The streams' bytes and the request/response transactions outside netbench.
STREAM_BYTES=16777216 RR_COUNT=2000
[ "$scope" = quick ] && STREAM_BYTES=1048576 RR_COUNT=20
# The guests' type (cohort_cfg's COHORT_TYPE): pvh, but for the PV figures.
COHORT_TYPE=pvh
guest() { cohort_cfg "$1" "$kernel" "$2 bench.clock=$clock"; }
log() { guest_log "$1"; }
# figures NAME LAST: the guest's BENCH lines, once xenconsoled has logged LAST.
figures() { wait_until 20 console_has "$1" "$2"; log "$1" | grep '^BENCH'; }
# figure NAME PATH VALUE UNIT; bench NAME VALUE UNIT is a figure of path "xen".
figure() { printf 'BENCH {"name":"%s","path":"%s","value":%s,"unit":"%s","clock":"%s"}\n' "$1" "$2" "$3" "$4" "$clock"; }
bench() { figure "$1" xen "$2" "$3"; }
# dom0_stream IP PATH: 16 MiB ($STREAM_BYTES) of zeros from dom0's busybox nc into the sink
# at IP, after the 8-byte "count only" magic: Cohort's sink then counts as
# netref's does, instead of hashing (SHA-256 in software costs a Cohort
# guest about 55 instructions a byte, which would be what is measured).
# The sink must answer the byte count first; prints the figure. The
# data's integrity through dom0 is what xen-net-dom0-echo-16MiB checks.
dom0_stream() {
    _size=$STREAM_BYTES
    _t0=$(now_ms)
    _answer=$({ printf cohort-n; head -c $_size /dev/zero; } | timeout 600 nc "$1" 9)
    _t1=$(now_ms)
    if [ "${_answer%% *}" != "$_size" ]; then
        echo "the sink at $1 answered \`$_answer\`, expected a count of $_size"; return 1
    fi
    echo "dom0 -> $1 stream: $_size bytes in $((_t1 - _t0)) ms (dom0's clock), sink answered: $_answer"
    figure net.tcp_stream "$2" "$(awk -v b=$_size -v ms=$((_t1 - _t0)) 'BEGIN { printf "%.3f", b * 8 / (ms / 1000) / 1e6 }')" Mbit/s
}
# dom0_ping IP PATH: 20 pings; prints the average round trip as a figure.
dom0_ping() {
    ping -c 20 -i 0.2 "$1" > /tmp/ping.out 2>&1 || { cat /tmp/ping.out; return 1; }
    tail -1 /tmp/ping.out
    figure net.icmp_rtt "$2" "$(tail -1 /tmp/ping.out | sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p')" ms
}
finish() { guest_finish "$1"; }
# iperf3 figures: Debian's iperf3 3.12 (in dom0 and the Linux guests) and
# Cohort's app=iperf3 / app=iperf3-client, 16 MiB (-n) per test, 3 tests
# per path, beside netbench's and netref's figures for the same paths:
# `net.iperf3_tcp`, the receiver's Mbit/s (iperf3's receiver line). Each
# report passes cohort-event's checks (tests/xen/event-tool) first.
IPERF_BYTES=$STREAM_BYTES
IPERF_REPS=3
# iperf_figure PATH FILE [TAG]: the figure of one iperf3 -J report (a file,
# or the report after `IPERF3 TAG` in a Linux guest's console log), once it
# passes the checks; says why not otherwise.
iperf_figure() {
    _path=$1; shift
    if ! _sum=$("$COHORT_EVENT" --iperf3 "$@"); then
        echo "iperf3 report $*: $_sum"; return 1
    fi
    echo "iperf3 $_path: $_sum"
    figure net.iperf3_tcp "$_path" "$("$COHORT_EVENT" --iperf3 "$@" --get end.sum_received.bits_per_second \
        | awk '{ printf "%.3f", $1 / 1e6 }')" Mbit/s
}
# dom0_iperf IP PATH: dom0's iperf3 -c IP -n 16 MiB, $IPERF_REPS times.
dom0_iperf() {
    _i=0
    while [ $_i -lt $IPERF_REPS ]; do
        timeout 300 iperf3 -c "$1" -n $IPERF_BYTES -J > /tmp/iperf3-bench.json 2>/tmp/iperf3.err
        iperf_figure "$2" /tmp/iperf3-bench.json || return 1
        _i=$((_i + 1))
    done
}

if full; then
    # xl create -> Cohort's `booted` event (its boot done, what the command
    # line asks runs next) in its console log (dom0's clock; the poll adds
    # up to 5 ms and a cohort-event run). Median of 5 guests. This includes
    # xenconsoled taking up the new domain's console, which the guest waits
    # for once its 2 KiB ring is full: in one loaded lab run 2.6 s, against
    # 0.73 s to the port-0xe9 banner in `xl dmesg` (the figure before,
    # xl_create_to_kernel_main) and 19 ms from PVH entry to ready.
    guest boot "bench=boot"
    times=""
    for i in 1 2 3 4 5; do
        t0=$(now_ms)
        xl_create /tmp/boot.cfg
        n=0
        until guest_event boot booted; do
            n=$((n + 1)); [ $n -gt 6000 ] && { guest_explain boot; fail xen-bench-boot "no booted event"; exit 0; }
            sleep 0.005
        done
        t1=$(now_ms)
        times="$times $((t1 - t0))"
        wait_until 30 dom_shutdown boot
        [ "$i" = 5 ] && figures boot image.loaded_size | sed 's/"path":"boot"/"path":"xen-pvh"/'
        finish boot
    done
    # shellcheck disable=SC2086 # $times: the five figures, one a word each
    median=$(printf '%s\n' $times | sort -n | sed -n 3p)
    echo "xl create -> booted event, ms:$times"
    bench xl_create_to_booted "$median" ms
    ok xen-bench-boot
fi

# The guest type: the Xen primitives (one guest) and the event-channel
# pair (two) as PVH and as PV guests of the same image, in turn, 3 times
# each; their figures' path is the type's, xen-pvh or xen-pv (the guest
# prints "xen"). netbench as PV is the configuration "pv" below.
TYPE_REPS=3
# type_figures NAME LAST: figures NAME LAST, path xen renamed after $COHORT_TYPE.
type_figures() { figures "$1" "$2" | sed "s/\"path\":\"xen\"/\"path\":\"xen-$COHORT_TYPE\"/"; }
# primitives: one bench=xen guest of type $COHORT_TYPE; its figure.
primitives() {
    guest prims "bench=xen"
    xl_create /tmp/prims.cfg
    if wait_until 60 dom_shutdown prims && wait_until 20 has_figure prims xen.hypercall_round_trip; then
        type_figures prims hypercall_round_trip
    else
        log prims | grep -v INFO | tail; finish prims; return 1
    fi
    finish prims
}
# evtchn_pair: bench=evtchn_ping and evtchn_pong guests of type
# $COHORT_TYPE, each told the other's domain; their figures.
evtchn_pair() {
    guest ping "bench=evtchn_ping"
    guest pong "bench=evtchn_pong"
    _r=0
    if xl_create /tmp/ping.cfg -p && xl_create /tmp/pong.cfg -p; then
        _a=$(xl domid ping) _b=$(xl domid pong)
        xenstore-write "/local/domain/$_a/data/peer" "$_b" "/local/domain/$_b/data/peer" "$_a"
        xl unpause ping; xl unpause pong
    fi
    if wait_until 300 dom_shutdown ping && wait_until 20 has_figure ping evtchn.notify_to_remote_handler \
        && wait_until 20 has_figure pong xen.grant_map_unmap; then
        type_figures ping notify_to_remote_handler; type_figures pong grant_map_unmap
    else
        log ping | grep -v INFO | tail; log pong | grep -v INFO | tail; _r=1
    fi
    finish ping; finish pong
    return $_r
}
if full || types; then
    bad_prims="" bad_evtchn=""
    rep=1
    while [ $rep -le $TYPE_REPS ]; do
        for COHORT_TYPE in pvh pv; do
            primitives || bad_prims="$bad_prims $COHORT_TYPE"
            evtchn_pair || bad_evtchn="$bad_evtchn $COHORT_TYPE"
        done
        rep=$((rep + 1))
    done
    COHORT_TYPE=pvh
    # type_result CHECK TYPE FAILED: the check of one type, failed when
    # TYPE is among the types that failed a repetition.
    type_result() {
        case " $3 " in
            *" $2 "*) fail "$1" "a $2 guest gave no figures (of $TYPE_REPS)" ;;
            *) ok "$1" ;;
        esac
    }
    type_result xen-bench-primitives pvh "$bad_prims"
    type_result xen-bench-primitives-pv pv "$bad_prims"
    type_result xen-bench-evtchn pvh "$bad_evtchn"
    type_result xen-bench-evtchn-pv pv "$bad_evtchn"
fi

# Networking. Two guests of group "lab" per configuration: netbench
# measures TCP_STREAM and TCP_RR over the shared-memory channel, the switch
# to netfront under load, the same over netfront (through dom0's bridge),
# and the channel coming back. The path of each figure gets the
# configuration's name: "channel/default", "netfront/ring8", ...
# Then how fast a survivor notices a destroyed peer, and dom0 <-> guest
# over netfront (a stream into the guest's sink, ping round trips).
net_guest() {
    cohort_cfg "$1" "$kernel" "net.ip=198.18.0.$2/15 bench.clock=$clock $3" "vif = [ \"bridge=xenbr0,mac=00:16:3e:c0:02:$2\" ]
$4"
}
discoveryd_running || discoveryd_start
# netbench_config NAME CMDLINE-EXTRA XL-EXTRA: netbench, every measurement
# repeated 3 times (the figures are the median and the spread).
configs_done=0
bench_t0=$(now_ms)
netbench_config() {
    configs_done=$((configs_done + 1))
    _el=$(( ($(now_ms) - bench_t0) / 1000 ))
    _left=""
    [ "$configs_done" -gt 1 ] && _left=", about $(( _el * (configs_total - configs_done + 1) / (configs_done - 1) )) s left"
    echo "bench: netbench configuration $configs_done of $configs_total ($1), ${_el} s so far$_left"
    net_guest srv 30 "app=echo net.group=lab $2" "$3"
    xl_create /tmp/srv.cfg
    if ! wait_until 60 guest_event srv address; then
        guest_explain srv; fail "xen-bench-net-$1" "server guest has no address"; finish srv; return
    fi
    net_guest nb 31 "app=netbench net.group=lab net.peer=198.18.0.30 net.bytes=16777216 net.count=2000 net.reps=3 $2" "$3"
    xl_create /tmp/nb.cfg
    needs srv
    if wait_quietly 1800 dom_shutdown nb && ! dom_crashed nb && wait_until 20 guest_event nb app app=netbench ok=true; then
        echo "netbench $1 ($2 $3):"
        log nb | grep -E "^netbench: TCP_STREAM|^netbench: switch|^netbench: channel"
        log nb | grep '^BENCH' | sed "s|\"path\":\"\([^\"]*\)\"|\"path\":\"\1/$1\"|"
        ok "xen-bench-net-$1"
    else
        guest_explain nb; fail "xen-bench-net-$1" "netbench did not finish"
    fi
    needs
    finish nb
    finish srv
}
# pv: the default configuration with both guests PV (the guest type).
netbench_pv() { COHORT_TYPE=pv; netbench_config pv "" ""; COHORT_TYPE=pvh; }
if types; then
    configs_total=2
    netbench_config default "" ""
    netbench_pv
    exit 0
fi
if full; then
    configs_total=2
    [ "$clock" = virtual ] && configs_total=17
    netbench_config default "" ""
    netbench_config poll-samecpu "chan.poll=on" 'cpus = "1"'
    if [ "$clock" = virtual ]; then
        # The factors (virtual time only: it does not depend on the host's load),
        # each varied alone from the default.
        netbench_pv
        netbench_config samecpu "" 'cpus = "1"'
        netbench_config events "chan.spin=0" ""
        netbench_config spin100 "chan.spin=100" ""
        netbench_config spin1ms "chan.spin=1000" ""
        netbench_config poll "chan.poll=on" ""
        netbench_config mtu1500 "chan.mtu=1500 chan.pages=16" ""
        netbench_config mtu9000 "chan.mtu=9000 chan.pages=32" ""
        netbench_config mtu16k "chan.mtu=16384" ""
        netbench_config mtu64k "chan.mtu=65521" ""
        # Rings of 32 pages hold 3 frames of 32 KiB; fewer pages cannot hold
        # the two a ring must (the guest refuses the configuration).
        netbench_config ring32 "chan.pages=32" ""
        netbench_config msg1k "net.msg=1024" ""
        netbench_config msg8k "net.msg=8192" ""
        netbench_config reno "net.cc=reno" ""
        netbench_config no-offload "net.offload=none" ""
    fi
fi

# iperf3 between two Cohort guests: app=iperf3-client (net.reps=3) against
# app=iperf3, over the channel (both in group "lab") and over netfront (the
# client in no group), paths as netbench's default configuration. Then
# dom0's iperf3 against the same server. The server stays for the Linux
# client below (Linux to Cohort).
net_guest isrv 33 "app=iperf3 net.group=lab" ""
xl_create /tmp/isrv.cfg
# iperf_client CHECK NAME OCTET PEER PATHS [GROUP-OPTION]: Cohort's
# app=iperf3-client as guest NAME (198.18.0.OCTET) against the iperf3
# server at PEER, $IPERF_REPS tests; its BENCH lines with their paths
# rewritten by the sed expression PATHS; the check xen-bench-iperf3-CHECK.
# The server's guest is named by `needs` before.
iperf_client() {
    net_guest "$2" "$3" "app=iperf3-client ${6:-} net.peer=$4 net.bytes=$IPERF_BYTES net.reps=$IPERF_REPS" ""
    xl_create "/tmp/$2.cfg"
    if wait_quietly 1200 dom_shutdown "$2" && ! dom_crashed "$2" && wait_until 20 guest_event "$2" app ok=true \
        && [ "$(event_count "$2" iperf3 role=client ok=true)" = $IPERF_REPS ]; then
        guest_events "$2" iperf3 role=client
        log "$2" | grep '^BENCH' | sed "$5"
        ok "xen-bench-iperf3-$1"
    else
        guest_explain "$2"; fail "xen-bench-iperf3-$1" "app=iperf3-client against $4 did not finish its $IPERF_REPS tests"
    fi
    finish "$2"
}
# The paths as netbench's default configuration's: channel/default, ...
DEFAULT_PATHS='s|"path":"\([^"]*\)"|"path":"\1/default"|'
if wait_until 60 guest_event isrv address; then
    needs isrv
    iperf_client cohort-channel icli 34 198.18.0.33 "$DEFAULT_PATHS" net.group=lab
    iperf_client cohort-netfront icli 34 198.18.0.33 "$DEFAULT_PATHS"
    needs
    if dom0_iperf 198.18.0.33 dom0-to-guest-netfront; then
        ok xen-bench-iperf3-dom0-to-cohort
    else
        fail xen-bench-iperf3-dom0-to-cohort "dom0's iperf3 against Cohort's server failed"
    fi
else
    guest_explain isrv; fail xen-bench-iperf3-cohort "Cohort's iperf3 server has no address"
fi

if full; then
    # A peer destroyed in the middle of request/response traffic: dom0's clock
    # from `xl destroy` returning to the survivor's log saying the channel is
    # closed, and released (every grant back).
    net_guest srv 30 "app=echo net.group=lab" ""
    xl_create /tmp/srv.cfg
    net_guest victim 32 "app=rr net.group=lab net.peer=198.18.0.30 net.count=10000000" ""
    xl_create /tmp/victim.cfg
    v=$(xl domid victim)
    needs srv
    if wait_until 120 guest_event victim progress app=rr; then
        xl destroy victim
        t0=$(now_ms)
        if wait_until 60 guest_event srv channel_closed peer="$v" && t1=$(now_ms) \
            && wait_until 60 guest_event srv channel_released peer="$v"; then
            t2=$(now_ms)
            figure channel.departure_to_closed channel $((t1 - t0)) ms
            figure channel.departure_to_released channel $((t2 - t0)) ms
            ok xen-bench-net-departure
        else
            guest_explain srv; fail xen-bench-net-departure "the server did not close and release the channel"
        fi
    else
        guest_explain victim; fail xen-bench-net-departure "the rr client never ran"
    fi
    needs
    finish victim
fi
# The measurements below need the server: one that died (a lab fault, say)
# is replaced, and that is said.
if dom_crashed srv || ! dom_state srv | grep -q .; then
    echo "the server guest is gone, crashed or not started ($(dom_state srv)); starting a new one for what follows"
    finish srv
    net_guest srv 30 "app=echo net.group=lab" ""
    xl_create /tmp/srv.cfg
    wait_until 60 guest_event srv address || echo "the new server guest has no address"
fi

if dom0_stream 198.18.0.30 dom0-to-guest-netfront && dom0_stream 198.18.0.30 dom0-to-guest-netfront \
    && dom0_stream 198.18.0.30 dom0-to-guest-netfront; then
    ok xen-bench-net-dom0-stream
else
    fail xen-bench-net-dom0-stream "stream into the guest failed"
fi
if dom0_ping 198.18.0.30 dom0-guest-netfront; then
    ok xen-bench-net-dom0-ping
else
    fail xen-bench-net-dom0-ping "no ping replies"
fi

# Reference: Linux guests (dom0's Debian kernel and its netfront) on the same
# bridge, 3 times each (ref.reps, as net.reps for netbench): Linux to Linux
# (with TSO/GSO, then without), Linux to Cohort (the servers above, whose
# group Linux is not in), Cohort to Linux, and dom0 to Linux. Stream
# throughput is Debian's iperf3 (-n 16 MiB: `net.iperf3_tcp`, from the
# Linux client's -J reports); request/response is netref's (iperf3 has no
# such mode: `net.tcp_rr`, `net.tcp_rr_latency_p50`). Only with the lab's
# --linux-guest.
REF_REPS=3
# linux_tail NAME: a Linux guest's last console lines, quoted (scenario-lib).
linux_tail() { log "$1" | tail -15 | quoted; }
# ref_client NAME PEER IPERF-PEER [CMDLINE]: a Linux client's iperf3 tests
# (against IPERF-PEER) and request/response runs (against PEER's echo);
# the servers' guests are named by `needs` before.
ref_client() {
    linux_cfg lcli "ref.role=client ref.ip=198.18.0.51/15 ref.peer=$2 ref.ipeer=$3 ref.path=$1-netfront ref.clock=$clock ref.bytes=$IPERF_BYTES ref.count=$RR_COUNT ref.reps=$REF_REPS ${4:-}" \
        'vif = [ "bridge=xenbr0,mac=00:16:3e:c0:02:51" ]'
    if linux_up lcli 300 address && wait_quietly 1800 dom_shutdown lcli \
        && guest_event lcli app app=linux-client ok=true; then
        _i=1 _bad=
        while [ $_i -le $REF_REPS ]; do
            iperf_figure "$1-netfront" /var/log/xen/console/guest-lcli.log "stream-$_i" || _bad=1
            _i=$((_i + 1))
        done
        log lcli | grep -E "^netref: rr"
        log lcli | grep '^BENCH'
        if [ -z "$_bad" ]; then ok "xen-bench-$1"; else fail "xen-bench-$1" "an iperf3 report did not pass its checks"; fi
    else
        linux_tail lcli; fail "xen-bench-$1" "the Linux client did not finish"
    fi
    finish lcli
}
# cohort_to_linux PEER: Cohort's stream app (not in a group: netfront only)
# into netref's sink at PEER, $REF_REPS times, count only (net.check=count:
# the "cohort-n" magic, as netref's streams send it), so neither end hashes
# and the figure is of the path, like the others here. Its figures get the
# path cohort-to-linux-netfront. The SHA-256 of this path is what
# cohort-linux.sh checks.
# all_streams_matched: c2l reported $REF_REPS streams whose count matched.
all_streams_matched() { [ "$(event_count c2l stream match=true)" -ge "$REF_REPS" ]; }
C2L_PATHS='s|"path":"[^"]*"|"path":"cohort-to-linux-netfront"|'
cohort_to_linux() {
    net_guest c2l 52 "app=stream net.peer=$1 net.bytes=$STREAM_BYTES net.reps=$REF_REPS net.check=count" ""
    xl_create /tmp/c2l.cfg
    if wait_quietly 1200 dom_shutdown c2l && ! dom_crashed c2l && wait_until 20 all_streams_matched; then
        guest_events c2l stream
        log c2l | grep '^BENCH' | sed "$C2L_PATHS"
        ok xen-bench-cohort-to-linux
    else
        guest_explain c2l; fail xen-bench-cohort-to-linux "the Cohort stream into Linux did not finish with the count matching"
    fi
    finish c2l
    # The same path measured by iperf3: Cohort's client against iperf3 -s.
    iperf_client cohort-to-linux c2l 52 "$1" "$C2L_PATHS"
}
if [ -f /cohort/linux/vmlinuz ]; then
    linux_cfg lsrv "ref.role=serve ref.ip=198.18.0.50/15" 'vif = [ "bridge=xenbr0,mac=00:16:3e:c0:02:50" ]'
    # Its iperf3 -s, netref's sink and netref's echo listen, the echo last.
    if linux_up lsrv 300 listening service=echo; then
        guest_events lsrv address
        needs lsrv
        ref_client linux-to-linux 198.18.0.50 198.18.0.50
        # Ethernet-size frames only (Cohort's netfront sends GSO packets
        # unless its offloads are off, as in the no-offload configuration).
        ref_client linux-to-linux-nogso 198.18.0.50 198.18.0.50 ref.gso=off
        # Cohort's echo (srv) for request/response, its iperf3 server (isrv)
        # for the streams; one that died (a lab fault, say) is replaced,
        # and that is said.
        if dom_crashed isrv || ! dom_state isrv | grep -q .; then
            dom_state isrv | grep -q . && guest_explain isrv
            echo "Cohort's iperf3 server is gone or crashed ($(dom_state isrv)); starting a new one"
            finish isrv
            xl_create /tmp/isrv.cfg
            wait_until 60 guest_event isrv address || echo "the new iperf3 server has no address"
        fi
        needs srv isrv
        ref_client linux-to-cohort 198.18.0.30 198.18.0.33
        needs lsrv
        cohort_to_linux 198.18.0.50
        needs
        if dom0_stream 198.18.0.50 dom0-to-linux-netfront && dom0_stream 198.18.0.50 dom0-to-linux-netfront \
            && dom0_stream 198.18.0.50 dom0-to-linux-netfront; then
            ok xen-bench-dom0-to-linux
        else
            fail xen-bench-dom0-to-linux "stream into the Linux guest failed"
        fi
        if dom0_iperf 198.18.0.50 dom0-to-linux-netfront; then
            ok xen-bench-iperf3-dom0-to-linux
        else
            fail xen-bench-iperf3-dom0-to-linux "dom0's iperf3 against the Linux guest's iperf3 -s failed"
        fi
        dom0_ping 198.18.0.50 dom0-linux-netfront || echo "dom0 could not ping the Linux guest"
    else
        linux_tail lsrv; fail xen-bench-linux-reference "the Linux guest did not come up"
    fi
    finish lsrv
fi
finish isrv
finish srv
