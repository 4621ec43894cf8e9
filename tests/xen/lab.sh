#!/usr/bin/env bash
# Interactive Xen lab: boot Xen + the harness dom0 under QEMU and get a root
# shell in dom0, with guest images and ready-made xl configs under /cohort.
#
# Usage:
#   tests/xen/lab.sh [GUEST.elf|FILE ...]
#   tests/xen/lab.sh [boot.sh options ...] -- [GUEST.elf|FILE ...]
#
# Every FILE is copied to /cohort/<basename>.  For every ELF file a PVH xl
# config /cohort/<name>.cfg is generated (memory=64, on_crash=preserve), so
#     xl create -c /cohort/<name>.cfg     # attach to its PV console (Ctrl-] leaves)
#     xl create /cohort/<name>.cfg; xl dmesg | grep '(d'   # port 0xe9 output
# just work.  Without FILEs the tiny harness test guest is built and injected
# as /cohort/guest.elf.
#
# Keys: Ctrl-t x quits QEMU (Ctrl-t h for more); Ctrl-a three times switches
# the console input between dom0 and Xen's debug keys; `poweroff -f` in dom0
# shuts the machine down.  Boot options such as --icount, --mem, --dom0-mem,
# --xen-args go before `--`.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

boot_args=() files=()
if printf '%s\n' "$@" | grep -qx -- '--'; then
    while [ $# -gt 0 ] && [ "$1" != -- ]; do boot_args+=("$1"); shift; done
    shift
fi
files=("$@")

cfgdir=$(mktemp -d /tmp/xenlab-labcfg.XXXXXX)
trap 'rm -rf "$cfgdir"' EXIT
if [ ${#files[@]} -eq 0 ]; then
    guest=$("$XEN_HARNESS_DIR/mk-test-guest.sh" /tmp/xenlab-guest/guest.elf)
    files=("$guest")
fi

inject=()
for f in "${files[@]}"; do
    [ -f "$f" ] || die "no such file: $f"
    inject+=(--file "$f")
    # A config for each guest image (ELF), not for dom0 programs.
    case $(basename "$f") in cohort-discoveryd) continue ;; esac
    if [ "$(head -c4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ]; then
        name=$(basename "$f"); name=${name%.elf}
        cat > "$cfgdir/$name.cfg" <<CFG
name = "$name"
type = "pvh"
kernel = "/cohort/$(basename "$f")"
memory = 64
vcpus = 1
on_poweroff = "destroy"
on_crash = "preserve"
vif = [ "bridge=xenbr0" ]
CFG
        inject+=(--file "$cfgdir/$name.cfg")
    fi
done

"$XEN_HARNESS_DIR/boot.sh" --shell "${inject[@]}" "${boot_args[@]}"
