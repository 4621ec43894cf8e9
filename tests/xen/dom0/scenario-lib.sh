# shellcheck shell=sh
# Helpers for harness scenarios (busybox ash).  Installed in dom0 as
# /usr/share/cohort/scenario-lib.sh; scenarios source it:
#     . /usr/share/cohort/scenario-lib.sh
# and declare each check they report in a comment line of their own,
#     # result: NAME
# which the test runner reads before the lab boots (every check is a test).
#
# Result protocol (the harness's schema: tests/harness/src/protocol.rs),
# one line per check; pass and fail are decided from these lines only:
#     RESULT {"name":"NAME","ok":true,"detail":"..."}
#     RESULT {"name":"NAME","ok":false,"detail":"REASON","lab_fault":"..."}
# and one line per thing done again (decides nothing; the summary lists it):
#     RETRY {"what":"...","why":"..."}

# json_str TEXT: TEXT as a JSON string, quotes included: backslash, quote
# and control characters escaped, lines joined with \n.
json_str() {
    printf '%s' "$1" | awk '
        BEGIN {
            ORS = ""
            for (i = 1; i < 32; i++) ctl[sprintf("%c", i)] = sprintf("\\u%04x", i)
            ctl["\t"] = "\\t"; ctl["\r"] = "\\r"; ctl["\\"] = "\\\\"; ctl["\""] = "\\\""
            print "\""
        }
        {
            if (NR > 1) print "\\n"
            n = length($0)
            for (i = 1; i <= n; i++) {
                c = substr($0, i, 1)
                print ((c in ctl) ? ctl[c] : c)
            }
        }
        END { print "\"" }'
}

# A failure that follows a LAB FAULT line (lab_fault) carries it.
LAB_FAULTS=${LAB_FAULTS:-/tmp/cohort-lab-faults}

# result NAME true|false DETAIL: the RESULT line.
result() {
    _extra=
    if [ "$2" = false ] && [ -s "$LAB_FAULTS" ]; then
        _extra=",\"lab_fault\":$(json_str "$(cat "$LAB_FAULTS")")"
        rm -f "$LAB_FAULTS"
    fi
    # printf: some shells' echo turns the escapes back into characters.
    printf 'RESULT {"name":%s,"ok":%s,"detail":%s%s}\n' "$(json_str "$1")" "$2" "$(json_str "$3")" "$_extra"
}
# ok NAME [DETAIL...], fail NAME REASON...
ok() { _n=$1; shift; result "$_n" true "$*"; }
fail() { _n=$1; shift; result "$_n" false "$*"; }
# retry WHAT WHY: something done again, said for people and for the harness.
retry() { printf '%s: %s; again\nRETRY {"what":%s,"why":%s}\n' "$1" "$2" "$(json_str "$1")" "$(json_str "$2")"; }
# lab_fault TEXT: a LAB FAULT line (a guest ran with the hypervisor's
# registers, or triple-faulted: see tests/xen/README.md), kept for the
# next failure this file reports; the test suite then runs once more.
lab_fault() { printf '%s\n' "$*" | tee -a "$LAB_FAULTS"; }

# Milliseconds since dom0 kernel start (monotonic enough for measurements).
now_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }

# needs NAME...: the guests the waits that follow depend on (`needs` alone:
# none). A wait gives up at once, returning 2, when one of them has
# crashed, shut down or gone, and says so: a client must not wait out its
# timeout for a server that is no longer there.
NEEDS=
needs() { NEEDS="$*"; }
# needed_gone: prints which needed guest ended, and how; false while all run.
needed_gone() {
    for _n in $NEEDS; do
        _st=$(dom_state "$_n")
        case $_st in
            '') echo "$_n, which this waits on, is gone" ;;
            *c*|*s*) echo "$_n, which this waits on, ended (state $_st)" ;;
            *) continue ;;
        esac
        return 0
    done
    return 1
}
# waited_on TICK: on every 20th tick, whether a needed guest ended (said).
waited_on() {
    [ -n "$NEEDS" ] && [ $(($1 % 20)) = 19 ] || return 1
    _why=$(needed_gone) || return 1
    echo "wait: $_why: giving up at once"
}

# wait_until TIMEOUT_S CMD...   poll CMD every 50 ms until it succeeds;
# 1 at the timeout, 2 at once when a guest named by `needs` ended.
wait_until() {
    _deadline=$(( $(now_ms) + $1 * 1000 )); shift
    _tick=0
    while ! "$@" >/dev/null 2>&1; do
        [ "$(now_ms)" -ge "$_deadline" ] && return 1
        waited_on $_tick && return 2
        _tick=$((_tick + 1))
        sleep 0.05
    done
}

# wait_quietly TIMEOUT_S CMD...   wait_until, looking once a second: use it
# while guests measure. dom0 shares the CPUs with them and carries
# netfront's traffic, and every `xl` call is a process under emulation:
# polling every 50 ms took enough of both to put a tail of milliseconds on
# request/response round trips.
wait_quietly() {
    _deadline=$(( $(now_ms) + $1 * 1000 )); shift
    _tick=19
    while ! "$@" >/dev/null 2>&1; do
        [ "$(now_ms)" -ge "$_deadline" ] && return 1
        waited_on $_tick && return 2
        sleep 1
    done
}

# Does Xen's console ring (`xl dmesg`) have a "(dDOMID) ...TEXT..." line?
# Guest output on I/O port 0xe9 lands there with guest_loglvl=all (with
# console_timestamps a "[ time]" sits between the prefix and the text).
dmesg_has() { xl dmesg | grep -F "(d$1) " | grep -qF "$2"; }
# wait_dmesg DOMID TEXT TIMEOUT_S
wait_dmesg() { wait_until "$3" dmesg_has "$1" "$2"; }

# Does the domain's PV console log (xenconsoled --log=guest) contain TEXT?
# For waiting on output to show, never for a check: checks read events.
console_has() { grep -qF "$2" "/var/log/xen/console/guest-$1.log" 2>/dev/null; }

# Is the domain gone?  wait_gone NAME TIMEOUT_S
dom_gone() { ! xl domid "$1" >/dev/null 2>&1; }
wait_gone() { wait_until "$2" dom_gone "$1"; }

# State letters of a domain from `xl list`: r b p s, then the shutdown
# reason (- poweroff, r reboot, c crash, ...), then d. A triple fault shows
# as "sr" (Xen's HVM shutdown action for it is a reboot).
dom_state() { xl list "$1" 2>/dev/null | awk 'NR == 2 { print $5 }'; }
dom_shutdown() { case $(dom_state "$1") in *s*) return 0 ;; esac; return 1; }

# The name = "..." of an xl config file.
cfg_name() { sed -n 's/^name *= *"\{0,1\}\([^"]*\)"\{0,1\}.*/\1/p' "$1" | head -n1; }
# xenconsoled appends to guest-NAME.log across domains of the same name:
# start each domain with an empty log, so no check matches an earlier one's.
fresh_log() { rm -f "/var/log/xen/console/guest-$1.log"; }

# Start a domain paused and print its domid; unpause with `xl unpause`.
# Creating paused lets the scenario learn the domid before the guest can
# run (and possibly exit) and time the guest from the unpause.
create_paused() {
    fresh_log "$(cfg_name "$1")"
    xl create -p "$@" >/tmp/xl-create.log 2>&1 || { cat /tmp/xl-create.log >&2; return 1; }
    xl domid "$(cfg_name "$1")"
}

# Dump diagnostics for a failing domain to the console.
dump_dom() {
    echo "---- xl list"; xl list
    echo "---- xl dmesg (tail)"; xl dmesg | tail -n 30
    [ -n "${1:-}" ] && { echo "---- console log $1"; cat "/var/log/xen/console/guest-$1.log" 2>/dev/null; }
    echo "----"
}

# xl_create CFG [xl create options...]: `xl create -e` (no background
# monitor; shut-down domains stay for inspection) that survives the lab's
# occasional xl crash. An xl that dies mid-create can leave a half-built
# domain behind, which then misbehaves (triple faults were seen), so that
# domain is destroyed and the create retried.
xl_create() {
    _cfg=$1; shift
    _name=$(cfg_name "$_cfg")
    for _try in 1 2 3; do
        fresh_log "$_name"
        xl create -q -e "$@" "$_cfg" >/tmp/xl-create.log 2>&1
        _rc=$?
        [ "$_rc" = 0 ] && return 0
        retry "xl create $_cfg" "try $_try failed, exit $_rc: $(grep -v 'tsc mode' /tmp/xl-create.log | tail -n 1)"
        xl destroy "$_name" >/dev/null 2>&1
        wait_gone "$_name" 10
    done
    return 1
}

# cohort_cfg NAME KERNEL CMDLINE [EXTRA-LINE]: writes /tmp/NAME.cfg for a
# Cohort guest (32 MiB, 1 vCPU) of type $COHORT_TYPE: pvh unless a scenario
# sets pv (the same image boots as either, docs/pv.md). Shut-down domains
# are preserved so a scenario can read how each one ended (state s:
# poweroff, c: crash). A `type = ...` or `memory = ...` line in
# EXTRA-LINE takes the place of the default one (the study's guest-type
# and guest-memory factors).
# The harness's PV/PVH matrix keeps a file as NAME.pv.sh for its PV run.
case ${0##*/} in *.pv.sh) COHORT_TYPE=${COHORT_TYPE:-pv} ;; esac
COHORT_TYPE=${COHORT_TYPE:-pvh}
cohort_cfg() {
    _type="type = \"$COHORT_TYPE\""
    printf '%s\n' "${4:-}" | grep -q '^type *=' && _type=
    _memory="memory = 32"
    printf '%s\n' "${4:-}" | grep -q '^memory *=' && _memory=
    cat > "/tmp/$1.cfg" <<CFG
name = "$1"
$_type
kernel = "$2"
$_memory
vcpus = 1
on_poweroff = "preserve"
on_crash = "preserve"
on_reboot = "preserve"
# The lab's nested TSC is stable; emulating rdtsc would slow the guest 100x.
tsc_mode = "native"
cmdline = "$3"
${4:-}
CFG
}

# linux_cfg NAME CMDLINE [EXTRA-LINE]: writes /tmp/NAME.cfg for a Linux
# reference guest: dom0's own Debian kernel as a domU of type $LINUX_TYPE
# (1 vCPU, 128 MiB) running /linux-guest-init from the harness initramfs,
# with CMDLINE's ref.* options (see tests/xen/linux-guest/init). Needs the
# lab's --linux-guest. PV by default: a PV guest runs without nested SVM,
# whose emulation is where the lab's faults strike (README, "What the
# nested lab taught us"); the bench compares Linux with Cohort as PVH.
LINUX_TYPE=${LINUX_TYPE:-pv}
linux_cfg() {
    cat > "/tmp/$1.cfg" <<CFG
name = "$1"
type = "$LINUX_TYPE"
kernel = "/cohort/linux/vmlinuz"
ramdisk = "/cohort/linux/initrd"
memory = 128
vcpus = 1
on_poweroff = "preserve"
on_crash = "preserve"
on_reboot = "preserve"
tsc_mode = "native"
cmdline = "console=hvc0 rdinit=/linux-guest-init loglevel=4 $2"
${3:-}
CFG
}

# linux_up NAME SECONDS KIND [KEY=VALUE...]: creates /tmp/NAME.cfg and
# waits for such an event of the guest (`address`: eth0 has its address;
# `listening service=...`: a server listens; see linux-guest/init), giving
# up when the guest ends first (or, with `needs`, a needed guest ends).
# Debian's kernel crashes now and then while booting in this nested lab
# (as PVH, mostly while polling the PIT it lacks: README, "What the nested
# lab taught us"), so a guest that did is re-created, twice at most, and
# each such boot is reported.
linux_up() {
    _up=$1 _secs=$2; shift 2
    for _boot in 1 2 3; do
        xl_create "/tmp/$_up.cfg" || return 1
        wait_until "$_secs" event_or_end "$_up" "$@" || return 1
        guest_event "$_up" "$@" && return 0
        dom_crashed "$_up" && [ "$_boot" -lt 3 ] || return 1
        retry "Linux guest $_up" "crashed while booting (try $_boot, state $(dom_state "$_up")): re-created"
        guest_finish "$_up"
    done
    return 1
}
# event_or_end GUEST KIND [KEY=VALUE...]: GUEST has such an event, or has
# ended (shut down or crashed).
event_or_end() { guest_event "$@" || dom_shutdown "$1"; }

# quoted: a guest's console as a scenario prints it. The harness stops the
# whole boot at the first "Kernel panic" (or "Panic on CPU", ...) on the serial
# line, meant for dom0's and Xen's: a Linux guest's own panic, quoted, must
# not match.
quoted() {
    sed -e 's/Kernel panic/kernel panic/g' -e 's/Panic on CPU/panic on CPU/g' \
        -e 's/Hardware Dom0 crashed/hardware dom0 crashed/g' -e 's/cohort-dom0: FATAL/cohort-dom0 FATAL/g'
}

# A guest's PV console, as xenconsoled logged it.
guest_log() { cat "/var/log/xen/console/guest-$1.log" 2>/dev/null; }
dom_crashed() { case $(dom_state "$1") in *c*|*sr*) return 0 ;; esac; return 1; }
# The last lines of a failing guest's console, and where its vCPU is
# (resolve RIP with `nm` on the image). Cohort maps nothing in the upper
# half: a saved RIP there is the hypervisor's own (its CR3, IDTR and GDTR
# come with it), loaded into the guest by QEMU's emulation of nested SVM.
# That is said on a "LAB FAULT" line (lab_fault), which the next failure
# carries. A triple fault (state `sr`: Xen's reboot action, and Cohort never
# reboots) is a suspected one: Cohort takes every exception on an IST stack
# and reports it, so a triple fault means the CPU failed to deliver one; the
# test suite's second run tells a lab fault from a Cohort bug, which would
# come back.
guest_explain() {
    echo "--- console of $1 ($(dom_state "$1")):"; guest_log "$1" | tail -25
    vif_explain "$(xl domid "$1" 2>/dev/null)"
    _ctx=$(xen-hvmctx "$(xl domid "$1" 2>/dev/null)" 2>&1)
    if ! echo "$_ctx" | grep -q ' rip '; then
        # A PV guest (no HVM context; no nested SVM under it either).
        echo "--- vCPU state (xenctx; resolve rip with nm on the image):"
        xenctx -a "$(xl domid "$1" 2>/dev/null)" 0 2>&1 | head -30
        return 0
    fi
    echo "--- vCPU state (xen-hvmctx; resolve rip with nm on the image):"
    echo "$_ctx" | grep -E " (rip|rsp|rax|rbx|rcx|rdx|cr[0234]) |event|idtr|gdtr| tr "
    _rip=$(echo "$_ctx" | sed -n 's/.* rip 0x\([0-9a-f]*\).*/\1/p' | head -n1)
    case $_rip in
        ffff8*) lab_fault "LAB FAULT: $1 ran with the hypervisor's registers (rip 0x$_rip, which Cohort never maps): QEMU's nested-SVM emulation broke, not the guest" ;;
        *) case $(dom_state "$1") in
               *sr*) lab_fault "LAB FAULT (suspected): $1 triple-faulted at rip 0x$_rip: exception delivery itself failed, which Cohort's IST stacks should make impossible" ;;
           esac ;;
    esac
}
# vcpu_reg NAME REG: REG (rip, rsp, cr2, ...) of NAME's vCPU 0 in hex
# without 0x, as xenctx prints it (a PV guest's saved registers, also
# after a crash the domain is preserved in).
vcpu_reg() {
    xenctx -a "$(xl domid "$1" 2>/dev/null)" 0 2>/dev/null \
        | awk -v r="$2:" '{ for (i = 1; i < NF; i++) if ($i == r) { print $(i + 1); exit } }'
}
# in_page HEX BASE: the address HEX (no 0x) lies in the 4 KiB page at BASE
# (decimal).
in_page() {
    case $1 in '' | *[!0-9a-f]*) return 1 ;; esac
    case $2 in '' | *[!0-9]*) return 1 ;; esac
    [ $((0x$1 - $2)) -ge 0 ] && [ $((0x$1 - $2)) -lt 4096 ]
}
# vif_explain DOMID: netback's side of each of the domain's vifs: link
# state, bridge, backend state and frame counts (tx: towards the guest).
vif_explain() {
    [ -n "$1" ] || return 0
    # Before any kick, which may unmask what this would show.
    ls /sys/class/net/vif"$1".* >/dev/null 2>&1 && evtchn_explain "$1"
    for _v in /sys/class/net/vif"$1".*; do
        [ -e "$_v" ] || continue
        _s=$_v/statistics
        _dev=${_v##*/}
        _be=/local/domain/0/backend/vif/$1/${_dev#*.}
        echo "--- $_dev: $(cat "$_v/operstate") carrier $(cat "$_v/carrier" 2>/dev/null || echo ?), bridge $(basename "$(readlink "$_v/master" 2>/dev/null)" 2>/dev/null), backend state $(xenstore-read "$_be/state" 2>/dev/null) hotplug $(xenstore-read "$_be/hotplug-status" 2>/dev/null); to the guest $(cat "$_s/tx_packets") frames ($(cat "$_s/tx_dropped") dropped), from it $(cat "$_s/rx_packets") ($(cat "$_s/rx_dropped") dropped)"
        vif_rings "$_dev"
    done
}
# vif_rings VIF: why a vif may carry nothing. Netback's view of the shared
# rings (the guest's req_prod against netback's req_cons says who stopped),
# dom0's interrupt counts per vCPU for the vif and the timer (a vCPU
# whose timer stopped no longer counts), and the network softirqs. Then
# one kick of netback's queue: frames that flow after it mean an event
# was lost, frames that do not mean netback itself is stuck.
vif_rings() {
    _ring=/sys/kernel/debug/xen-netback/$1/io_ring_q0
    [ -r "$_ring" ] || { echo "--- $1: no $_ring (debugfs)"; return 0; }
    echo "--- $1 rings (netback's debugfs):"; sed 's/^/    /' "$_ring"
    echo "--- dom0 interrupts and softirqs:"
    # A PV dom0's timer is a per-vCPU virq (timer0, timer1), not LOC.
    grep -E "^ *CPU| timer[0-9]+\$|$1-" /proc/interrupts | sed 's/^/    /'
    grep -E "CPU|NET_TX|NET_RX|TIMER" /proc/softirqs | sed 's/^/    /'
    _from=$(cat "/sys/class/net/$1/statistics/rx_packets")
    _to=$(cat "/sys/class/net/$1/statistics/tx_packets")
    _warned=$(dmesg | grep -c "Interrupt while EOI pending")
    echo kick > "$_ring" 2>/dev/null
    sleep 1
    echo "--- $1 one second after a kick: from the guest $_from -> $(cat "/sys/class/net/$1/statistics/rx_packets"), to it $_to -> $(cat "/sys/class/net/$1/statistics/tx_packets"); netback's 'Interrupt while EOI pending' warnings $_warned -> $(dmesg | grep -c "Interrupt while EOI pending") (the kick calls its handler: a new warning means dom0 still owed the port its EOI, so the port stayed masked)"
}
# evtchn_explain DOMID: Xen's view (debug key 'e') of the domain's event
# channels and of dom0's ports bound to them: [pending/masked/state]. For
# a guest whose notifications dom0 never handled: dom0's port pending and
# masked means dom0 owed it an EOI; pending and unmasked, an upcall lost
# in dom0; neither, the guest never sent (or sent on another port).
evtchn_explain() {
    xl debug-keys e >/dev/null 2>&1 || return 0
    echo "--- event channels of domain $1 and dom0's ports bound to it (Xen's 'e' key; [pending/masked/state], s=3 interdomain, d/p the remote end):"
    xl dmesg | awk -v d="$1" '
        /Event channel information for domain 0:/ { n = 0; delete keep }
        /Event channel information for domain/ { dom = $NF; sub(":", "", dom); next }
        !/\[[0-9]/ { next }
        dom == d || (dom == 0 && $0 ~ (" d=" d " p=")) { keep[++n] = "    dom" dom ":" $0 }
        END { for (i = 1; i <= n; i++) print keep[i] }'
}
# ping_guest GUEST IP: dom0's three pings to GUEST answered (the output in
# /tmp/ping-GUEST.out). Linux 6.1's netback can miss a new vif's first
# event for good (README, the deaf netfront); the guest's watchdog then
# connects netfront again after 2 s, longer than dom0's ARP waits. So
# pings left unanswered are asked again once the guest says it restarted
# netfront, after Xen's view of its event channels; guest_finish counts
# the restart as a RETRY. PING_ROUNDS says how many rounds were sent.
# ping_guest GUEST IP READY...: the second round also waits (up to 10 s)
# for the command READY... to succeed.
# shellcheck disable=SC2034 # PING_ROUNDS is read by the scenarios
ping_guest() {
    _pg_guest=$1 _pg_ip=$2; shift 2
    PING_ROUNDS=1
    ping -c 3 -W 5 "$_pg_ip" >"/tmp/ping-$_pg_guest.out" 2>&1 && return 0
    PING_ROUNDS=2
    evtchn_explain "$(xl domid "$_pg_guest")"
    wait_until 10 guest_event "$_pg_guest" netfront_restarted ok=true || return 1
    if [ $# -gt 0 ]; then wait_until 10 "$@" || return 1; fi
    ping -c 3 -W 5 "$_pg_ip" >>"/tmp/ping-$_pg_guest.out" 2>&1
}
# guest_finish NAME: destroys NAME, and says (a RETRY line, which the
# harness's summary counts) each time its netfront had to connect again
# because netback left its transmits unanswered (issue 14).
guest_finish() {
    cohort_event "$1" netfront_restarted --get stalled_ms 2>/dev/null | while read -r _ms; do
        retry "netfront of $1" "netback answered none of its transmits for $_ms ms, so it connected again"
    done
    xl destroy "$1" >/dev/null 2>&1; wait_gone "$1" 10
}

# The residency discovery daemon (started by /init when injected).
DISCOVERYD=/cohort/cohort-discoveryd
DISCOVERYD_LOG=/var/log/cohort-discoveryd.log
discoveryd_pid() { cat /run/cohort-discoveryd.pid 2>/dev/null; }
discoveryd_running() { _p=$(discoveryd_pid); [ -n "$_p" ] && kill -0 "$_p" 2>/dev/null; }
discoveryd_stop() {
    if discoveryd_running; then kill "$(discoveryd_pid)"; wait_until 5 sh -c "! kill -0 $(discoveryd_pid) 2>/dev/null"; fi
    rm -f /run/cohort-discoveryd.pid
}
# discoveryd_start [ARGS...]: the daemon's options, e.g. --policy FILE
# (none: the groups are the guests' claims, as /init starts it).
# shellcheck disable=SC2120 # the options are optional
discoveryd_start() {
    discoveryd_running && return 0
    [ -x "$DISCOVERYD" ] || { echo "no $DISCOVERYD in this dom0"; return 1; }
    setsid "$DISCOVERYD" "$@" >>"$DISCOVERYD_LOG" 2>&1 &
    echo $! > /run/cohort-discoveryd.pid
}

# discoveryd's cost per scan (the study's question 2): N fake Cohort guests
# of one group as xenstore entries only (domids 1001 and up, which no
# domain has: a scan reads /local/domain, the adverts and dom0's vif
# backend entries, and never asks the hypervisor), then
# `cohort-discoveryd --once --clock virtual`, which times its one scan.
DCOST_FIRST=1001
DCOST_PEERS=/local/domain/0/cohort/peers
dcost_mac() { printf '00:16:3e:c9:00:%02x' "$1"; }
# dcost_add K: domain 1000+K as the toolstack and netback would leave it,
# advertising itself in group dcost.
dcost_add() {
    _d=$((DCOST_FIRST - 1 + $1)) _mac=$(dcost_mac "$1")
    _fe=/local/domain/$_d _be=/local/domain/0/backend/vif/$_d/0
    xenstore-write "$_fe/domid" "$_d" "$_fe/name" "dcost$1" \
        "$_fe/device/vif/0/backend" "$_be" "$_fe/device/vif/0/backend-id" 0 \
        "$_fe/device/vif/0/mac" "$_mac" "$_fe/device/vif/0/handle" 0 "$_fe/device/vif/0/state" 4 \
        "$_be/frontend" "$_fe/device/vif/0" "$_be/frontend-id" "$_d" "$_be/online" 1 "$_be/state" 4 \
        "$_be/script" /etc/xen/scripts/vif-cohort "$_be/mac" "$_mac" "$_be/bridge" xenbr0 \
        "$_be/handle" 0 "$_be/type" vif "$_be/hotplug-status" connected \
        "$_fe/data/cohort/advert" "version=1 group=dcost mac=$_mac ipv4=198.18.9.$1"
}
# dcost_paths PREFIX N: PREFIX/1001 ... PREFIX/(1000+N), one a line.
dcost_paths() { _k=0; while [ $_k -lt "$2" ]; do echo "$1/$((DCOST_FIRST + _k))"; _k=$((_k + 1)); done; }
# dcost_clean N: every node of the first N fakes, their lists included.
dcost_clean() {
    for _p in /local/domain /local/domain/0/backend/vif $DCOST_PEERS; do
        for _n in $(dcost_paths "$_p" "$1"); do xenstore-rm "$_n" 2>/dev/null; done
    done
}
# dcost_lists_ok N: each of the N fakes has a list naming the others (at
# most 8, the daemon's bound).
dcost_lists_ok() {
    _want=$(($1 - 1)); [ $_want -gt 8 ] && _want=8
    # shellcheck disable=SC2046 # one path a word
    xenstore-read $(dcost_paths $DCOST_PEERS "$1") > /tmp/discovery-cost.lists 2>&1 || return 1
    awk -v n="$1" -v want="$_want" '
        $1 == "v1" && NF == want + 1 { good++ }
        END { exit !(NR == n && good == n) }' /tmp/discovery-cost.lists
}
# discovery_cost ID N REPS: N fakes, one warm-up scan (dropped) and REPS
# scans, each a `STUDY-BENCH ID BENCH {...}` line, then `STUDY-END ID ok`
# (or `fail REASON`); the fakes are removed and the daemon, stopped
# meanwhile, runs again after. Sets dcost_values (the scans' microseconds)
# and dcost_why (empty when every scan counted N fakes plus the real
# guests and wrote each fake's list).
discovery_cost() {
    dcost_values='' dcost_why=''
    discoveryd_stop
    # Real guests count too: the scan looks at every domain but dom0.
    _real=$(xenstore-list /local/domain | grep -cv '^0$')
    _made=0
    while [ $_made -lt "$2" ] && [ -z "$dcost_why" ]; do
        _made=$((_made + 1))
        dcost_add $_made || dcost_why="xenstore-write of fake $_made failed"
    done
    _run=0
    while [ -z "$dcost_why" ] && [ $_run -le "$3" ]; do
        timeout 60 "$DISCOVERYD" --once --clock virtual > /tmp/discovery-cost.out 2>&1
        _line=$(grep '^BENCH ' /tmp/discovery-cost.out)
        _path=$(printf '%s\n' "$_line" | sed -n 's/.*"path":"\([^"]*\)".*/\1/p')
        _value=$(printf '%s\n' "$_line" | sed -n 's/.*"value":\([0-9.]*\),.*/\1/p')
        if [ "$(printf '%s\n' "$_line" | grep -c .)" != 1 ] || [ -z "$_value" ]; then
            dcost_why="run $_run printed no BENCH line"
        elif [ "$_path" != "domains-$(($2 + _real))" ]; then
            dcost_why="run $_run: $_path, not domains-$(($2 + _real)) ($2 fakes, $_real real guests)"
        elif ! dcost_lists_ok "$2"; then
            dcost_why="run $_run did not write every fake's list: $(head -c 300 /tmp/discovery-cost.lists)"
        else
            # Each run starts without the fakes' lists, so each writes them all.
            # shellcheck disable=SC2046 # one path a word
            xenstore-rm $(dcost_paths $DCOST_PEERS "$2")
            # Run 0 is the warm-up.
            if [ $_run -gt 0 ]; then
                echo "STUDY-BENCH $1 $_line"
                dcost_values="$dcost_values $_value"
            fi
            _run=$((_run + 1))
        fi
    done
    [ -n "$dcost_why" ] && { echo "--- the daemon's output:"; tail -n 20 /tmp/discovery-cost.out; }
    dcost_clean $_made
    discoveryd_start
    if [ -n "$dcost_why" ]; then
        echo "STUDY-END $1 fail $dcost_why"
        return 1
    fi
    echo "STUDY-END $1 ok"
}

# channel_share GUEST OF: the channel's share in percent of the frames of
# GUEST's last measurement OF (stream, rr, ...; its `frames` event), or
# nothing.
channel_share() { event_field "$1" frames share of="$2"; }
# Whether $1 >= $2 for decimals (awk: busybox has no bc).
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

# A Cohort guest's EVENT {json} lines (schema: kernel/figures/src/result.rs),
# read by cohort-event (tests/xen/event-tool, put in the lab next to the
# daemon): every check on what a Cohort guest did reads these, never its
# human log lines. KIND is the event's kind, KEY=VALUE its fields (a string
# as is, else as JSON: true, 3, null; frames.channel for a field of an
# object). A KIND or KEY the schema does not have is said, and counts as
# not found.
COHORT_EVENT=/cohort/cohort-event
# cohort_event GUEST ARGS...: cohort-event on GUEST's console log; its
# status (0 found, 1 not, 2 usage). Lines that are not events (one still
# being written) are left out quietly.
cohort_event() {
    _g=$1; shift
    "$COHORT_EVENT" "/var/log/xen/console/guest-$_g.log" "$@" 2>/tmp/cohort-event.err
    _rc=$?
    [ "$_rc" = 2 ] && echo "cohort-event $*: $(grep -v 'not an event' /tmp/cohort-event.err)" >&2
    return "$_rc"
}
# guest_event GUEST KIND [KEY=VALUE...]: has GUEST such an event?
guest_event() { cohort_event "$@" >/dev/null; }
# no_event GUEST KIND [KEY=VALUE...]: GUEST has no such event (and the
# question was a good one: a misspelt KEY is no answer).
no_event() { cohort_event "$@" >/dev/null; [ $? = 1 ]; }
# guest_events GUEST KIND [KEY=VALUE...]: the matching events, for people.
guest_events() { cohort_event "$@"; }
# event_field GUEST KIND FIELD [KEY=VALUE...]: FIELD of the last match.
event_field() { _g=$1 _k=$2 _f=$3; shift 3; cohort_event "$_g" "$_k" "$@" --get "$_f" --last; }
# event_count GUEST KIND [KEY=VALUE...]: how many events match.
event_count() { cohort_event "$@" --count; }
# has_figure GUEST NAME: GUEST printed a BENCH figure NAME (read as JSON).
has_figure() { guest_event "$1" bench name="$2"; }
# figure_value GUEST NAME PATH: the value of GUEST's last figure NAME over
# PATH; empty if there is none.
figure_value() { cohort_event "$1" bench name="$2" path="$3" --last --get value; }
# no_channel GUEST [PEER]: GUEST's log has nothing of a channel (to PEER,
# or to anyone): never up, closed, refused or released.
no_channel() {
    for _k in channel_up channel_closed channel_refused channel_released; do
        no_event "$1" "$_k" ${2:+"peer=$2"} || return 1
    done
}
