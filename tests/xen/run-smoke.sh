#!/usr/bin/env bash
# One-shot self-test of the real-Xen harness: build the tiny PVH test guest
# and run scenarios/smoke.sh against it under real Xen.  Extra arguments go
# to boot.sh (e.g. --icount, -v, --timeout 300).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
guest=$("$here/mk-test-guest.sh" /tmp/xenlab-guest/guest.elf)
exec "$here/boot.sh" --file "$guest:guest.elf" \
    --scenario "$here/scenarios/smoke.sh /cohort/guest.elf" "$@"
