#!/usr/bin/env bash
# Boot real Xen 4.17 + a Debian dom0 under QEMU (TCG, no KVM) and run
# scenario scripts inside dom0, or give an interactive dom0 shell: the
# harness's `lab` command (tests/harness/src/lab.rs), which takes the
# options this script always took:
#
#   tests/xen/boot.sh --file SRC[:DEST] --scenario 'FILE [ARGS...]' [--linux-guest]
#                     [--shell] [--timeout SECS] [--scenario-timeout SECS] [--icount]
#                     [--mem MIB] [--dom0-mem MIB] [--smp N] [--xen-args '...']
#                     [--dom0-args '...'] [--log FILE] [-v]
#
# `tests/xen/boot.sh --help` lists them. Exit status: 0 when every check
# passed; 1 on a failed check, a Xen or dom0 panic or a missing DONE line;
# 124 on the timeout; 2 on a usage error; 4 when the lab could not start.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
exec cargo run --quiet --manifest-path "$top/Cargo.toml" -p cohort-harness -- lab "$@"
