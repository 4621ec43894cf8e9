#!/bin/sh
# Cohort under real Xen: every scenario of issue 4, on the image at
#   cohort.sh [KERNEL]   (default /cohort/cohort)
# Checks (each a test of `cargo test`, see tests/xen/README.md):
# result: xen-guest-tests-poweroff        test=all passes on Xen, then powers off
# result: xen-two-guests-grant-and-event  a grant and an event channel between two guests
# result: xen-bad-cmdline-crashes         a bad command-line key crashes the guest, named
# result: xen-stack-overflow-caught       the guard page catches a stack overflow
# result: xen-all-guests-gone             nothing of ours is left running
# shellcheck source=../dom0/scenario-lib.sh
. /usr/share/cohort/scenario-lib.sh

kernel=${1:-/cohort/cohort}
[ -f "$kernel" ] || { fail cohort-image "no kernel image at $kernel"; exit 0; }

guest() { cohort_cfg "$1" "$kernel" "$2"; }
log() { guest_log "$1"; }
# passed NAME TEST: NAME's kernel test TEST passed (its `test` event).
passed() { guest_event "$1" test name="$2" ok=true; }
# ended NAME: the domain has shut down (s) or crashed (c), within 60 s.
ended() { wait_until 60 dom_shutdown "$1"; }
crashed() { dom_crashed "$1"; }
finish() { guest_finish "$1"; }
explain() { guest_explain "$1"; }

# 1. One guest runs every kernel test on Xen, then powers off; its booted
# event names the entry of the guest type asked for (the matrix's PV run
# cannot pass with PVH guests).
guest tests "test=all"
xl_create /tmp/tests.cfg
if ended tests && ! crashed tests && guest_event tests test_result ok=true && passed tests xen_xenstore_watch \
    && guest_event tests booted entry="$COHORT_TYPE"; then
    log tests | grep -E "domid|^test |passed"
    ok xen-guest-tests-poweroff
else
    explain tests; fail xen-guest-tests-poweroff "no clean poweroff with all tests passing"
fi
finish tests

# 2. Two guests share a page and an event channel, introduced through xenstore.
guest offer "test=xen_grant_offer"
guest accept "test=xen_grant_accept"
xl_create /tmp/offer.cfg -p && xl_create /tmp/accept.cfg -p
a=$(xl domid offer) b=$(xl domid accept)
xenstore-write "/local/domain/$a/data/peer" "$b" "/local/domain/$b/data/peer" "$a"
xl unpause offer; xl unpause accept
if ended offer && ended accept && ! crashed offer && ! crashed accept \
    && passed offer xen_grant_offer && passed accept xen_grant_accept; then
    log offer | grep -E "offered|answer"; log accept | grep mapped
    ok xen-two-guests-grant-and-event
else
    explain offer; explain accept; fail xen-two-guests-grant-and-event "grant/event exchange did not complete"
fi
finish offer; finish accept

# 3. A bad command-line key: a crash, with the key named on the console.
guest badkey "bad.key=1"
xl_create /tmp/badkey.cfg
if ended badkey && crashed badkey && guest_event badkey boot_failed what="kernel command line" key=bad.key; then
    log badkey | grep error
    ok xen-bad-cmdline-crashes
else
    explain badkey; fail xen-bad-cmdline-crashes "expected a crash naming bad.key"
fi
finish badkey

# 4. A stack overflow inside a Xen guest is caught by the guard page. A
# PVH guest takes the page fault on an IST stack and reports it. A PV guest
# has no stack to take it on (docs/pv.md): Xen cannot write the fault's
# frame below the guard, so it crashes the domain (preserved); dom0 reads
# the stopped vCPU and checks that the fault's address (cr2) is in the
# guard page the guest named before it recursed.
if [ "$COHORT_TYPE" = pvh ]; then
    guest overflow "test=stack_overflow"
    xl_create /tmp/overflow.cfg
    if ended overflow && ! crashed overflow && passed overflow stack_overflow \
        && guest_event overflow fault vector=14 guard="boot stack"; then
        ok xen-stack-overflow-caught
    else
        explain overflow; fail xen-stack-overflow-caught "guard page fault not reported as expected"
    fi
else
    guest overflow "test=stack_overflow_pv"
    xl_create /tmp/overflow.cfg
    guard='' cr2=''
    if ended overflow && crashed overflow; then
        guard=$(event_field overflow guard addr name="boot stack")
        cr2=$(vcpu_reg overflow cr2)
    fi
    if [ -n "$guard" ] && in_page "$cr2" "$guard" && no_event overflow test; then
        ok xen-stack-overflow-caught "PV: Xen crashed the domain at cr2 0x$cr2, in the boot stack's guard page at $(printf '0x%x' "$guard")"
    else
        guest_explain overflow; xl dmesg | tail -n 15
        fail xen-stack-overflow-caught "no crash in the boot stack's guard page (state $(dom_state overflow), cr2 ${cr2:-unknown}, guard ${guard:-not named})"
    fi
fi
finish overflow

# Nothing of ours is left behind in dom0's view.
if [ "$(xl list | wc -l)" -eq 2 ]; then ok xen-all-guests-gone; else xl list; fail xen-all-guests-gone "domains left"; fi
