#!/usr/bin/env bash
# Build a tiny PVH test guest used to exercise the Xen harness itself.
#
# The guest is a ~1 KiB ELF whose only job is to prove the chain
# "xl create type=pvh -> Xen loads ELF -> guest runs -> output visible":
#   * a .note.Xen ELF note of type XEN_ELFNOTE_PHYS32_ENTRY (18) tells the
#     Xen toolstack this is a PVH kernel and where its 32-bit entry point is;
#   * it is linked/loaded at 1 MiB physical (PVH guests are loaded at their
#     ELF physical addresses);
#   * the entry point (32-bit protected mode, paging off) writes a message
#     to I/O port 0xe9, which Xen prints on its console as "(dN) ..." lines
#     when booted with guest_loglvl=all (readable in dom0 via `xl dmesg`);
#   * it then does `cli; hlt`.  Xen treats HLT with interrupts disabled on
#     the last online vCPU of an HVM/PVH domain as "all vCPUs offline" and
#     shuts the domain down with reason poweroff, so the guest ends by itself
#     (on_poweroff defaults to destroy).
#
# Usage: mk-test-guest.sh [OUT.elf] [MESSAGE]
#   OUT.elf defaults to /tmp/xenlab-guest/guest.elf (deliberately outside the
#   repo: the real Cohort kernel lives elsewhere; this is a harness fixture).
set -euo pipefail

out=${1:-/tmp/xenlab-guest/guest.elf}
msg=${2:-hello from pvh}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need as || ! need ld; then
    echo "mk-test-guest: installing binutils (need as/ld)" >&2
    apt-get install -y --no-install-recommends binutils >/dev/null
fi

work=$(mktemp -d /tmp/xenlab-guestbuild.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$out")"

# Escape the message for a GNU as .ascii string.
esc=${msg//\\/\\\\}
esc=${esc//\"/\\\"}

cat > "$work/guest.S" <<ASM
    .code32
    .section .text, "ax"
    .globl _start
_start:
    cli
    mov     \$msg, %esi
    mov     \$0xe9, %dx
1:  lodsb
    test    %al, %al
    jz      2f
    outb    %al, %dx
    jmp     1b
2:  cli
    hlt                     /* IF=0 + HLT on last vCPU => Xen powers domain off */
    jmp     2b

    .section .rodata, "a"
msg:
    .ascii  "${esc}\n\0"

    /* Xen ELF note: name "Xen\0", type 18 (XEN_ELFNOTE_PHYS32_ENTRY),
       descriptor = 32-bit physical entry address. */
    .section .note.Xen, "a", @note
    .p2align 2
    .long   4               /* namesz */
    .long   4               /* descsz */
    .long   18              /* type   */
    .asciz  "Xen"
    .long   _start
ASM

cat > "$work/guest.ld" <<'LD'
OUTPUT_FORMAT("elf64-x86-64")
ENTRY(_start)
PHDRS {
    text PT_LOAD FLAGS(5);
    note PT_NOTE FLAGS(4);
}
SECTIONS {
    . = 0x100000;           /* load at 1 MiB physical */
    .text   : { *(.text) }   :text
    .rodata : { *(.rodata) } :text
    .note.Xen : { *(.note.Xen) } :text :note
    /DISCARD/ : { *(.note.GNU-stack) *(.comment) }
}
LD

as --64 -o "$work/guest.o" "$work/guest.S"
ld -m elf_x86_64 -nostdlib -z noexecstack -z max-page-size=0x1000 \
   -T "$work/guest.ld" -o "$out" "$work/guest.o"
echo "$out"
