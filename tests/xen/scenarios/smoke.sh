#!/bin/sh
# Smoke scenario for the real-Xen harness.
#   smoke.sh [GUEST_ELF] [EXPECTED_TEXT]
# GUEST_ELF (default /cohort/guest.elf) must be a PVH ELF that prints
# EXPECTED_TEXT (default "hello from pvh") on I/O port 0xe9 and then powers
# off or halts; tests/xen/mk-test-guest.sh builds such a guest.
# shellcheck source=../dom0/scenario-lib.sh
. /usr/share/cohort/scenario-lib.sh

guest=${1:-/cohort/guest.elf}
expect=${2:-hello from pvh}

# 1. the toolstack talks to Xen and xenstore
if xl list | grep -q '^Domain-0 '; then ok xl-list; else fail xl-list "Domain-0 not in xl list"; fi

[ -f "$guest" ] || { fail pvh-hello "guest image $guest not found"; exit 0; }

# 2. a PVH guest boots and its port-0xe9 output reaches Xen's console
cat > /tmp/smoke.cfg <<CFG
name = "smoke"
type = "pvh"
kernel = "$guest"
memory = 32
vcpus = 1
on_poweroff = "preserve"
on_crash = "preserve"
CFG
t0=$(now_ms)
if ! domid=$(create_paused /tmp/smoke.cfg); then
    fail pvh-hello "xl create failed"; exit 0
fi
t1=$(now_ms)
xl unpause smoke
if wait_dmesg "$domid" "$expect" 20; then
    t2=$(now_ms)
    echo "smoke: xl create -p took $((t1 - t0)) ms; output $((t2 - t1)) ms after unpause"
    ok pvh-hello
else
    dump_dom smoke
    fail pvh-hello "no '(d$domid) $expect' in xl dmesg within 20 s"
fi

# 3. cli;hlt on the only vCPU = poweroff: with on_poweroff=preserve the
#    domain stays around in state 's'; then xl destroy removes it.
if wait_until 10 dom_shutdown smoke; then ok pvh-shutdown
else fail pvh-shutdown "domain state '$(dom_state smoke)', expected shut down"; fi
xl destroy smoke
if wait_gone smoke 10; then ok xl-destroy; else fail xl-destroy "domain still listed"; fi

# 4. networking plumbing: a vif on xenbr0 gets a netback backend and the
#    hotplug script attaches vif<domid>.0 to the bridge.  The guest has no
#    netfront, so only the backend side is checked.
cat > /tmp/smoke-net.cfg <<CFG
name = "smoke-net"
type = "pvh"
kernel = "$guest"
memory = 32
vif = [ "bridge=xenbr0,mac=00:16:3e:00:00:01" ]
CFG
if domid=$(create_paused /tmp/smoke-net.cfg); then
    if xenstore-exists "/local/domain/0/backend/vif/$domid/0" \
        && wait_until 5 test -e "/sys/class/net/xenbr0/brif/vif$domid.0"; then
        ok vif-backend
    else
        xenstore-ls "/local/domain/0/backend" 2>&1 | head -40
        fail vif-backend "no netback backend / vif$domid.0 not on xenbr0"
    fi
    xl destroy smoke-net
else
    fail vif-backend "xl create with vif failed"
fi
exit 0
