#!/usr/bin/env bash
# Interactive Xen lab: boot Xen + the harness dom0 under QEMU and get a root
# shell in dom0, with guest images and ready-made xl configs under /cohort.
#
# Usage:
#   tests/xen/lab.sh [GUEST.elf|FILE ...]
#   tests/xen/lab.sh [lab options ...] -- [GUEST.elf|FILE ...]
#
# Every FILE is copied to /cohort/<basename>.  For every ELF file (but the
# discovery daemon) a PVH xl config /cohort/<name>.cfg is generated
# (memory=64, on_crash=preserve), so
#     xl create -c /cohort/<name>.cfg     # attach to its PV console (Ctrl-] leaves)
#     xl create /cohort/<name>.cfg; xl dmesg | grep '(d'   # port 0xe9 output
# just work.  Without FILEs the tiny harness test guest is built and injected
# as /cohort/guest.elf. `./run.sh xen-lab` does the same with Cohort's
# kernel and discovery daemon.
#
# Keys: Ctrl-t x quits QEMU (Ctrl-t h for more); Ctrl-a three times switches
# the console input between dom0 and Xen's debug keys; `poweroff -f` in dom0
# shuts the machine down.  Lab options such as --icount, --mem, --dom0-mem,
# --xen-args (see boot.sh) go before `--`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

boot_args=()
if printf '%s\n' "$@" | grep -qx -- '--'; then
    while [ $# -gt 0 ] && [ "$1" != -- ]; do boot_args+=("$1"); shift; done
    shift
fi
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
    files=("$("$here/mk-test-guest.sh" /tmp/xenlab-guest/guest.elf)")
fi
inject=()
for f in "${files[@]}"; do
    [ -f "$f" ] || { echo "lab.sh: no such file: $f" >&2; exit 1; }
    inject+=(--file "$f")
done
exec "$here/boot.sh" --shell "${inject[@]}" "${boot_args[@]}"
