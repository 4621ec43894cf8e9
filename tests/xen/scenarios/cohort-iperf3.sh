#!/bin/sh
# iperf3 under real Xen: Debian's iperf3 3.12 (in dom0 and in the Linux
# reference guests) against Cohort's `app=iperf3` server, Cohort's
# `app=iperf3-client` against a stock `iperf3 -s` and against Cohort's
# server over the shared-memory channel. Every verdict comes from
# structured output: iperf3's `-J` report, checked by
# `cohort-event --iperf3` (tests/xen/event-tool: a test that ran as asked,
# the bytes sent and received both counted, the sums and the streams
# agreeing, or a refusal with iperf3's own message), and the Cohort
# guests' `iperf3` EVENT lines (one per test, with what the guest counted),
# which must agree with the report. Needs the lab's --linux-guest for the
# two Linux checks (they fail, not skip, without it).
#   cohort-iperf3.sh [KERNEL]   (default /cohort/cohort)
# Checks (each a test of `cargo test`, see tests/xen/README.md):
# result: xen-iperf3-dom0-tcp                  dom0's iperf3 -c -t 2 -J into Cohort's server
# result: xen-iperf3-dom0-reverse              the same with -R: Cohort sends
# result: xen-iperf3-dom0-parallel-4           the same with -P 4
# result: xen-iperf3-dom0-bidir                the same with --bidir: both ways at once, each counted by both ends
# result: xen-iperf3-dom0-udp                  the same with -u -b 10M: packets, loss reported
# result: xen-iperf3-dom0-sctp-refused-then-served  --sctp gets iperf3's own error, the next client is served
# result: xen-iperf3-linux-to-cohort           a Linux guest's iperf3 -c -t 2 -J into Cohort's server
# result: xen-iperf3-cohort-to-linux           Cohort's app=iperf3-client against iperf3 -s in a Linux guest
# result: xen-iperf3-cohort-to-linux-options   the same with the iperf3. keys: -t 2 -R -P 2, then -t 2 -u -b 10M
# result: xen-iperf3-cohort-to-cohort-channel  Cohort's client against Cohort's server, one group: over the channel
# shellcheck source=../dom0/scenario-lib.sh
. /usr/share/cohort/scenario-lib.sh

kernel=${1:-/cohort/cohort}
# Addresses 198.18.0.80-84 and MACs 00:16:3e:c0:06:80-84: no other
# scenario file uses them.
SRV=198.18.0.80 CCLI=198.18.0.81 LCLI=198.18.0.82 LSRV=198.18.0.83 C2L=198.18.0.84
# Every check this file declares (the `# result:` lines above).
ALL=$(sed -n 's/^# result: \([^ ]*\).*/\1/p' "$0")
# What Debian's 3.12 client says when the server refuses --sctp as a Linux
# server without SCTP does (our recording, kernel/iperf3/tests/fixtures).
SCTP_ERROR="unable to start stream listener: Protocol not supported"
REPORT=/tmp/iperf3-report.json

# cohort NAME IP CMDLINE: a Cohort guest with a vif on xenbr0.
cohort() { cohort_cfg "$1" "$kernel" "net.ip=$2/15 $3" "vif = [ \"bridge=xenbr0,mac=00:16:3e:c0:06:${2##*.}\" ]"; }
# linux NAME IP CMDLINE: a Linux reference guest with a vif on xenbr0.
linux() { linux_cfg "$1" "ref.ip=$2/15 $3" "vif = [ \"bridge=xenbr0,mac=00:16:3e:c0:06:${2##*.}\" ]"; }
# linux_explain NAME: how a Linux guest ended and its console's last lines;
# a crashed one is a suspected lab fault (as in cohort-linux.sh).
linux_explain() {
    dom_state "$1" | grep -q . || return 0
    echo "--- console of Linux guest $1 ($(dom_state "$1")):"; guest_log "$1" | tail -n 30 | quoted
    dom_crashed "$1" && lab_fault "LAB FAULT (suspected): Linux guest $1 crashed ($(dom_state "$1")): Debian's kernel under the lab's nested emulation, not Cohort"
    return 0
}
# report_check FILE [TAG] [OPTIONS...]: cohort-event --iperf3; its summary
# (or why not) in $checked.
report_check() { checked=$("$COHORT_EVENT" --iperf3 "$@" 2>&1); }
# report_field FILE [TAG] FIELD: a field of the report, which must pass
# the checks of $report_opts (the options it was checked with).
report_opts=
report_field() {
    # shellcheck disable=SC2086 # $report_opts: the options, one a word
    if [ $# = 3 ]; then "$COHORT_EVENT" --iperf3 "$1" "$2" $report_opts --get "$3" 2>/dev/null
    else "$COHORT_EVENT" --iperf3 "$1" $report_opts --get "$2" 2>/dev/null; fi
}
# tests_done: how many tests Cohort's server reported finished.
tests_done() { event_count srv iperf3 role=server ok=true; }
# server_agrees BEFORE WHAT: Cohort's server reported exactly one more
# finished test than BEFORE, and the bytes it counted equal the report's
# (WHAT: received for a test where the client sends, the report's
# end.sum_received; sent for -R, end.sum_sent; bidir-sent for what it sent
# in a --bidir test, end.sum_sent_bidir_reverse). Says why not in $why.
server_agrees() {
    _file=$REPORT _tag=
    [ -n "${3:-}" ] && _file=$3 _tag=$4
    if [ "$(tests_done)" != $(($1 + 1)) ]; then
        why="Cohort's server reported $(tests_done) finished tests, expected $(($1 + 1))"; return 1
    fi
    case $2 in
        received) _ours=$(event_field srv iperf3 bytes_received role=server ok=true) _key=end.sum_received.bytes ;;
        sent) _ours=$(event_field srv iperf3 bytes_sent role=server ok=true) _key=end.sum_sent.bytes ;;
        bidir-sent) _ours=$(event_field srv iperf3 bytes_sent role=server ok=true) _key=end.sum_sent_bidir_reverse.bytes ;;
    esac
    # shellcheck disable=SC2086 # $_tag: empty or the tag
    _theirs=$(report_field "$_file" $_tag "$_key")
    if [ -z "$_ours" ] || [ "$_ours" != "$_theirs" ]; then
        why="Cohort's server counted ${_ours:-nothing} bytes $2, the report's $_key says ${_theirs:-nothing}"; return 1
    fi
}

discoveryd_running || discoveryd_start || echo "no discovery daemon: the channel check will fail"

# Cohort's server, in group ip3 (the channel check's client joins it);
# dom0 and the Linux guests reach it over netfront.
cohort srv "$SRV" "app=iperf3 net.group=ip3"
if ! xl_create /tmp/srv.cfg || ! wait_until 60 guest_event srv address ip="$SRV"; then
    guest_explain srv
    for name in $ALL; do fail "$name" "Cohort's iperf3 server never reported its address"; done
    exit 0
fi
srv_id=$(xl domid srv)

# dom0 NAME IPERF3-OPTIONS -- CHECK-OPTIONS: dom0's iperf3 -c -J into
# Cohort's server; the report must pass cohort-event's checks with
# CHECK-OPTIONS, and the server's event must agree with it.
dom0_client() {
    _name=$1; shift
    _opts=
    while [ "$1" != -- ]; do _opts="$_opts $1"; shift; done
    shift
    report_opts=$*
    _before=$(tests_done)
    why=
    # shellcheck disable=SC2086 # $_opts: the options, one a word
    timeout 120 iperf3 -c "$SRV" -J $_opts > "$REPORT" 2>/tmp/iperf3.err
    _rc=$?
    if ! report_check "$REPORT" "$@"; then
        why="iperf3 -c$_opts (exit $_rc): $checked $(head -c 300 /tmp/iperf3.err)"
    else
        _what=received
        case " $* " in *" --reverse "*) _what=sent ;; *" --bidir "*) _what="received bidir-sent" ;; esac
        wait_until 10 sh -c "[ \"\$(. /usr/share/cohort/scenario-lib.sh; event_count srv iperf3 role=server ok=true)\" -gt $_before ]"
        for _w in $_what; do server_agrees "$_before" "$_w" || break; done
    fi
    if [ -z "$why" ]; then
        echo "dom0 iperf3 -c$_opts: $checked"
        guest_events srv iperf3 role=server --last
        ok "$_name" "$checked"
    else
        guest_explain srv; fail "$_name" "$why"
    fi
}

dom0_client xen-iperf3-dom0-tcp -t 2 --
dom0_client xen-iperf3-dom0-reverse -t 2 -R -- --reverse
dom0_client xen-iperf3-dom0-parallel-4 -t 2 -P 4 -- --streams 4
dom0_client xen-iperf3-dom0-bidir -t 2 --bidir -- --bidir
dom0_client xen-iperf3-dom0-udp -t 2 -u -b 10M -- --udp

# --sctp: the server refuses it as a Linux server without SCTP does
# (SERVER_ERROR 202, errno 93); the real client prints iperf3's own
# message, which -J puts in "error" (3.12 then exits 0 with -J, as our
# recording shows, so the exit status is only said); Cohort's server
# reports the refusal (i_errno 202). Then the next client is served.
refused_before=$(event_count srv iperf3 role=server ok=false i_errno=202)
timeout 60 iperf3 -c "$SRV" -J --sctp -t 1 > "$REPORT" 2>/tmp/iperf3.err
rc=$?
why=
if ! report_check "$REPORT" --error "$SCTP_ERROR"; then
    why="iperf3 -c --sctp (exit $rc): $checked"
elif ! wait_until 10 sh -c "[ \"\$(. /usr/share/cohort/scenario-lib.sh; event_count srv iperf3 role=server ok=false i_errno=202)\" -gt $refused_before ]"; then
    why="Cohort's server did not report the refusal (an iperf3 event with i_errno 202)"
else
    refusal=$checked
    report_opts=
    before=$(tests_done)
    timeout 60 iperf3 -c "$SRV" -J -t 1 > "$REPORT" 2>/tmp/iperf3.err
    if ! report_check "$REPORT"; then
        why="the next client was not served: $checked"
    else
        wait_until 10 sh -c "[ \"\$(. /usr/share/cohort/scenario-lib.sh; event_count srv iperf3 role=server ok=true)\" -gt $before ]"
        server_agrees "$before" received || true
    fi
fi
if [ -z "$why" ]; then
    echo "dom0 iperf3 -c --sctp (exit $rc): $refusal; then iperf3 -c -t 1: $checked"
    guest_events srv iperf3 role=server ok=false --last
    ok xen-iperf3-dom0-sctp-refused-then-served "$refusal; next: $checked"
else
    guest_explain srv; fail xen-iperf3-dom0-sctp-refused-then-served "$why"
fi

have_linux=true
if [ ! -f /cohort/linux/vmlinuz ] || [ ! -f /cohort/linux/initrd ]; then
    echo "no Linux guest kernel in /cohort/linux: run the lab with --linux-guest"
    have_linux=false
fi

# A Linux guest's iperf3 -c -t 2 -J into Cohort's server (its report on
# its console, one line after `IPERF3 iperf3-1`).
if ! $have_linux; then
    fail xen-iperf3-linux-to-cohort "no /cohort/linux/vmlinuz (the lab needs --linux-guest)"
else
    before=$(tests_done)
    report_opts=
    linux lcli "$LCLI" "ref.role=iperf3 ref.peer=$SRV ref.iperf=-t,2"
    why=
    log=/var/log/xen/console/guest-lcli.log
    if ! linux_up lcli 300 address; then
        why="the Linux guest did not come up"
    elif ! wait_quietly 300 dom_shutdown lcli || dom_crashed lcli; then
        why="the Linux guest's iperf3 did not finish ($(dom_state lcli))"
    elif ! report_check "$log" iperf3-1; then
        why="the Linux guest's report: $checked"
    else
        wait_until 10 sh -c "[ \"\$(. /usr/share/cohort/scenario-lib.sh; event_count srv iperf3 role=server ok=true)\" -gt $before ]"
        server_agrees "$before" received "$log" iperf3-1 || true
    fi
    if [ -z "$why" ]; then
        echo "Linux guest iperf3 -c -t 2: $checked"
        guest_events srv iperf3 role=server --last
        ok xen-iperf3-linux-to-cohort "$checked"
    else
        guest_explain srv; linux_explain lcli; fail xen-iperf3-linux-to-cohort "$why"
    fi
    guest_finish lcli
fi

# client_agrees NAME BYTES: Cohort client NAME ended well (`app` ok) and
# its iperf3 event says it sent BYTES over TCP, the server received them
# (no more, at least half: the rest in flight at TEST_END), at a rate.
client_agrees() {
    if ! wait_until 20 guest_event "$1" app ok=true; then
        why="the Cohort client did not end well: $(guest_events "$1" app)"; return 1
    fi
    if ! guest_event "$1" iperf3 role=client ok=true protocol=tcp streams=1 reverse=false bytes_sent="$2"; then
        why="no iperf3 event of $2 bytes sent: $(guest_events "$1" iperf3)"; return 1
    fi
    _got=$(event_field "$1" iperf3 bytes_received role=client ok=true)
    _mbit=$(event_field "$1" iperf3 mbit_per_s role=client ok=true)
    if [ "${_got:-0}" -gt "$2" ] || [ "${_got:-0}" -lt $(($2 / 2)) ] || ! at_least "${_mbit:-0}" 0.001; then
        why="the server received ${_got:-?} of $2 bytes at ${_mbit:-?} Mbit/s"; return 1
    fi
    # The BENCH figure is the event's rate.
    if ! has_figure "$1" net.iperf3_tcp; then
        why="no BENCH net.iperf3_tcp figure"; return 1
    fi
}

# Cohort's app=iperf3-client (16 MiB, -n) against iperf3 -s in a Linux
# guest; neither is in a group: netfront only.
if ! $have_linux; then
    fail xen-iperf3-cohort-to-linux "no /cohort/linux/vmlinuz (the lab needs --linux-guest)"
    fail xen-iperf3-cohort-to-linux-options "no /cohort/linux/vmlinuz (the lab needs --linux-guest)"
else
    linux lsrv "$LSRV" "ref.role=serve"
    why=
    size=16777216
    if ! linux_up lsrv 300 listening service=iperf3; then
        why="the Linux iperf3 -s guest did not come up"
    else
        cohort c2l "$C2L" "app=iperf3-client net.peer=$LSRV net.bytes=$size"
        if ! xl_create /tmp/c2l.cfg; then
            why="xl create failed"
        elif ! wait_quietly 300 dom_shutdown c2l || dom_crashed c2l; then
            why="the Cohort client did not finish ($(dom_state c2l))"
        elif client_agrees c2l "$size"; then
            if [ "$(event_field c2l iperf3 frames.channel role=client)" != 0 ]; then
                why="frames over a channel, with no peer in its group"
            fi
        fi
    fi
    if [ -z "$why" ]; then
        guest_events c2l iperf3
        guest_log c2l | grep '^BENCH'
        ok xen-iperf3-cohort-to-linux "$(event_field c2l iperf3 mbit_per_s role=client) Mbit/s"
    else
        dom_state c2l | grep -q . && guest_explain c2l
        linux_explain lsrv; fail xen-iperf3-cohort-to-linux "$why"
    fi
    guest_finish c2l
    # The iperf3. keys against the same stock server: -R -P 2 (the server
    # sends on two streams), then UDP; each test's event must say what ran,
    # with what the receiving side counted.
    why='' options=''
    if [ -z "$(dom_state lsrv)" ] || dom_crashed lsrv; then
        why="the Linux iperf3 -s guest is gone ($(dom_state lsrv))"
    else
        for test in "iperf3.time=2 iperf3.reverse=on iperf3.parallel=2" "iperf3.time=2 iperf3.udp=on iperf3.bitrate=10M"; do
            cohort c2lo "$C2L" "app=iperf3-client net.peer=$LSRV $test"
            if ! xl_create /tmp/c2lo.cfg; then
                why="xl create failed ($test)"
            elif ! wait_quietly 300 dom_shutdown c2lo || dom_crashed c2lo; then
                why="the Cohort client did not finish ($test: $(dom_state c2lo))"
            elif ! wait_until 20 guest_event c2lo app ok=true; then
                why="the Cohort client did not end well ($test): $(guest_events c2lo app)"
            else
                case $test in
                *udp*) expect="protocol=udp streams=1 reverse=false" bench=net.iperf3_udp ;;
                *) expect="protocol=tcp streams=2 reverse=true" bench=net.iperf3_tcp_reverse_p2 ;;
                esac
                # shellcheck disable=SC2086 # expect is a list of fields
                sent=$(event_field c2lo iperf3 bytes_sent role=client ok=true $expect)
                got=$(event_field c2lo iperf3 bytes_received role=client ok=true)
                packets=$(event_field c2lo iperf3 udp_packets role=client ok=true)
                lost=$(event_field c2lo iperf3 udp_lost role=client ok=true)
                if [ -z "$sent" ]; then
                    why="no iperf3 event with $expect ($test): $(guest_events c2lo iperf3)"
                elif [ "${got:-0}" -le 0 ] || [ "$got" -gt "$sent" ]; then
                    why="the receiver counted ${got:-?} of $sent bytes ($test)"
                elif [ "$bench" = net.iperf3_udp ] && { [ "${packets:-0}" -le 0 ] || [ "${lost:-0}" -gt "$packets" ]; }; then
                    why="UDP: ${lost:-?} lost of ${packets:-?} datagrams ($test)"
                elif ! has_figure c2lo "$bench"; then
                    why="no BENCH $bench figure ($test)"
                else
                    guest_events c2lo iperf3
                    options="$options $bench $(event_field c2lo iperf3 mbit_per_s role=client) Mbit/s;"
                fi
            fi
            [ -z "$why" ] || { dom_state c2lo | grep -q . && guest_explain c2lo; }
            guest_finish c2lo
            [ -z "$why" ] || break
        done
    fi
    if [ -z "$why" ]; then
        ok xen-iperf3-cohort-to-linux-options "${options# }"
    else
        linux_explain lsrv; fail xen-iperf3-cohort-to-linux-options "$why"
    fi
    guest_finish lsrv
fi

# Cohort's client against Cohort's server, both in group ip3: the channel
# comes up between them, and the switch counters (the `frames` of the
# client's test and of the server's) show the test's frames took it.
size=33554432
cohort ccli "$CCLI" "app=iperf3-client net.group=ip3 net.peer=$SRV net.bytes=$size"
before=$(tests_done)
why=
if ! xl_create /tmp/ccli.cfg; then
    why="xl create failed"
elif ! wait_quietly 300 dom_shutdown ccli || dom_crashed ccli; then
    why="the Cohort client did not finish ($(dom_state ccli))"
elif client_agrees ccli "$size"; then
    cshare=$(event_field ccli iperf3 frames.share role=client)
    sshare=$(event_field srv iperf3 frames.share role=server ok=true)
    if ! guest_event ccli channel_up peer="$srv_id"; then
        why="no channel to the server (dom$srv_id)"
    elif [ "$(tests_done)" != $((before + 1)) ]; then
        why="Cohort's server reported $(tests_done) finished tests, expected $((before + 1))"
    elif [ "$(event_field srv iperf3 bytes_received role=server ok=true)" != "$(event_field ccli iperf3 bytes_received role=client)" ]; then
        why="the server counted $(event_field srv iperf3 bytes_received role=server ok=true) bytes, the client says it reported $(event_field ccli iperf3 bytes_received role=client)"
    elif [ -z "$cshare" ] || [ -z "$sshare" ] || ! at_least "$cshare" 99 || ! at_least "$sshare" 99; then
        why="the channel's share of the test's frames: client ${cshare:-?}%, server ${sshare:-?}%"
    fi
fi
if [ -z "$why" ]; then
    guest_events ccli channel_up --first
    guest_events ccli iperf3
    guest_events srv iperf3 role=server --last
    guest_log ccli | grep '^BENCH'
    ok xen-iperf3-cohort-to-cohort-channel "$(event_field ccli iperf3 mbit_per_s role=client) Mbit/s, channel share client $cshare%, server $sshare%"
else
    dom_state ccli | grep -q . && guest_explain ccli
    guest_explain srv; tail -5 "$DISCOVERYD_LOG"; fail xen-iperf3-cohort-to-cohort-channel "$why"
fi
guest_finish ccli
guest_finish srv
