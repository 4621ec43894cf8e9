#!/usr/bin/env bash
# Boot real Xen 4.17 + a Debian dom0 under QEMU (TCG, no KVM) and run
# scenario scripts inside dom0, or give an interactive dom0 shell.
#
# Usage:
#   tests/xen/boot.sh [options]
#
# Options:
#   --file SRC[:DEST]      copy host file SRC into dom0 as /cohort/DEST
#                          (DEST defaults to basename SRC); repeatable
#   --scenario 'FILE [ARGS...]'
#                          run scenario script FILE (copied to
#                          /cohort/scenarios/) with ARGS in dom0; repeatable,
#                          run in the given order
#   --linux-guest          also copy dom0's kernel and this initramfs in, as
#                          /cohort/linux/vmlinuz and /cohort/linux/initrd, so
#                          scenarios can boot Linux reference guests
#                          (linux_cfg in dom0/scenario-lib.sh)
#   --shell                interactive dom0 shell on this terminal (see lab.sh)
#   --timeout SECS         overall limit for the QEMU run (default 180)
#   --scenario-timeout S   per-scenario limit inside dom0 (default 120)
#   --icount               deterministic virtual time: -icount shift=0,sleep=off
#                          (1 instruction = 1 ns; slower, single-threaded TCG)
#   --mem MIB              machine memory (default 2048)
#   --dom0-mem MIB         dom0 memory (default 512)
#   --smp N                CPUs (default 2)
#   --xen-args '...'       extra Xen command-line arguments
#   --dom0-args '...'      extra dom0 kernel arguments (no commas)
#   --log FILE             where to keep the serial log
#                          (default /tmp/xenlab-run.XXXXXX/serial.log, deleted
#                          after a passing run unless COHORT_XEN_KEEP_LOGS=1)
#   -v, --verbose          echo the whole serial console (default: progress,
#                          scenario output, and the log tail on failure)
#
# Exit status: 0 only if dom0 printed "XEN-HARNESS DONE passed=N failed=0";
# 1 on scenario failures, Xen/dom0 panic or missing DONE line; 2 on usage
# errors; 124 on timeout.
#
# How guests/scenarios get in without rebuilding the dom0 initramfs: the
# injected files go into a small second cpio.gz which is concatenated onto
# the cached base initramfs (Linux unpacks concatenated archives in order).
# Xen hands the first multiboot module after its own kernel image to dom0
# as its kernel and the next one as the initrd, so one file is simplest.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }

files=() scenarios=()
shell=0 linux_guest=0 timeout=180 scen_timeout=120 icount=0 mem=2048 dom0_mem=512 smp=2
xen_args="" dom0_args="" log="" verbose=0
while [ $# -gt 0 ]; do
    case $1 in
        --file) files+=("$2"); shift 2 ;;
        --scenario) scenarios+=("$2"); shift 2 ;;
        --shell) shell=1; shift ;;
        --linux-guest) linux_guest=1; shift ;;
        --timeout) timeout=$2; shift 2 ;;
        --scenario-timeout) scen_timeout=$2; shift 2 ;;
        --icount) icount=1; shift ;;
        --mem) mem=$2; shift 2 ;;
        --dom0-mem) dom0_mem=$2; shift 2 ;;
        --smp) smp=$2; shift 2 ;;
        --xen-args) xen_args=$2; shift 2 ;;
        --dom0-args) dom0_args=$2; shift 2 ;;
        --log) log=$2; shift 2 ;;
        -v|--verbose) verbose=1; shift ;;
        -h|--help) usage ;;
        *) echo "boot.sh: unknown option $1" >&2; usage ;;
    esac
done
if [ "$shell" = 0 ] && [ ${#scenarios[@]} -eq 0 ]; then
    echo "boot.sh: give at least one --scenario (or --shell)" >&2; exit 2
fi
case $dom0_args in *,*) die "--dom0-args must not contain commas (QEMU splits -initrd on them)" ;; esac
case ${COHORT_CACHE:-}${COHORT_XEN_CACHE:-}$HOME in *,*) die "cache path must not contain commas (QEMU splits -initrd on them)" ;; esac

ensure_host_tools qemu-system-x86_64:qemu-system-x86 cpio:cpio gzip:gzip

root=$("$XEN_HARNESS_DIR/fetch.sh")
base=$("$XEN_HARNESS_DIR/build-initramfs.sh" "$root")

run=$(mktemp -d /tmp/xenlab-run.XXXXXX)
[ -n "$log" ] || log="$run/serial.log"
qemu_pid=""
cleanup() {
    if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then kill -9 "$qemu_pid" 2>/dev/null || true; fi
    # keep the serial log (if it lives in $run) for post-mortems; drop the rest
    rm -rf "$run/overlay" "$run/initrd.cpio.gz" "$run/overlay.cpio.gz"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- overlay cpio with /cohort ------------------------------------------------
ov="$run/overlay"
mkdir -p "$ov/cohort/scenarios"
for spec in "${files[@]}"; do
    src=${spec%%:*}; dest=${spec#*:}
    [ "$dest" = "$spec" ] && dest=$(basename "$src")
    [ -e "$src" ] || die "--file: $src does not exist"
    mkdir -p "$(dirname "$ov/cohort/$dest")"
    cp -a "$src" "$ov/cohort/$dest"
done
if [ "$linux_guest" = 1 ]; then
    mkdir -p "$ov/cohort/linux"
    cp -L "$root/vmlinuz" "$ov/cohort/linux/vmlinuz"
    cp "$base" "$ov/cohort/linux/initrd"
fi
: > "$ov/cohort/scenarios.list"
for spec in "${scenarios[@]}"; do
    read -r sfile sargs <<<"$spec"
    [ -f "$sfile" ] || die "--scenario: $sfile does not exist"
    install -m 755 "$sfile" "$ov/cohort/scenarios/$(basename "$sfile")"
    echo "/cohort/scenarios/$(basename "$sfile") ${sargs:-}" >> "$ov/cohort/scenarios.list"
done
(cd "$ov" && find cohort | LC_ALL=C sort | cpio --quiet -o -H newc --owner=0:0) \
    | gzip -1 > "$run/overlay.cpio.gz"
cat "$base" "$run/overlay.cpio.gz" > "$run/initrd.cpio.gz"

# --- QEMU command line -----------------------------------------------------------
# -cpu max: TCG's SVM with nested paging (HAP).  Debian's Xen is built
# without shadow paging, so a CPU without HAP can't run PVH/HVM guests.
# -x2apic / x2apic=false: keep Xen on the xAPIC path under TCG.
# -xsave: with XSAVE (and so AVX) offered, processes in dom0 (xl, awk, sh)
# die of segmentation faults now and then once guests run network traffic:
# register state is lost across switches in QEMU 7.2's nested emulation.
# Without it Xen and Linux use FXSAVE, and none were seen in 20+ runs.
# COHORT_CPU and COHORT_ACCEL override the -cpu and -accel values (for
# experiments, e.g. COHORT_ACCEL=tcg,thread=single).
# smap=0: with SMAP on, Xen 4.17 under QEMU 7.2 TCG crashes the PV dom0 at
# its first exception ("domain_crash_sync called from entry.S: fault at
# create_bounce_frame", #PF[0001] on the guest kernel stack).  Xen's own
# SMAP use is irrelevant for a test machine; guests still see SMAP.
# bootscrub=0: by default Xen scrubs all free RAM on idle CPUs after boot;
# under TCG that steals seconds of host CPU from dom0's boot.
# dom0 kernel: the pre-extracted ELF vmlinux if fetch.sh made one (saves
# Xen ~3.5 s of xz decompression under TCG), else the bzImage.
# No NIC at all (-nic none): nothing can leave the machine.
mode=run; [ "$shell" = 1 ] && mode=shell
kernel="$root/vmlinuz"; [ -f "$root/vmlinux" ] && kernel="$root/vmlinux"
xen_cmdline="console=com1 com1=115200,8n1 smap=0 bootscrub=0 dom0_mem=${dom0_mem}M,max:${dom0_mem}M dom0_max_vcpus=$smp guest_loglvl=all loglvl=all x2apic=false noreboot $xen_args"
dom0_cmdline="console=hvc0 earlyprintk=xen rdinit=/init loglevel=4 cohort.mode=$mode cohort.timeout=$scen_timeout $dom0_args"
# shellcheck disable=SC2054  # commas are QEMU syntax, not array separators
qemu=(qemu-system-x86_64 -accel "${COHORT_ACCEL:-tcg}" -cpu "${COHORT_CPU:-max,-x2apic,-xsave}" -m "$mem" -smp "$smp"
      -no-reboot -nic none
      -kernel "$root/xen-hypervisor" -append "$xen_cmdline"
      -initrd "$kernel $dom0_cmdline,$run/initrd.cpio.gz")
# shellcheck disable=SC2054
[ "$icount" = 1 ] && qemu+=(-icount shift=0,sleep=off)

if [ "$shell" = 1 ]; then
    # Ctrl-t is QEMU's escape key here (Ctrl-t x quits, Ctrl-t c monitor) so
    # that Ctrl-a stays free for Xen's "Ctrl-a x3: switch input to Xen" and
    # Ctrl-] for detaching from `xl console`.
    # signal=off: Ctrl-C goes to the dom0 shell instead of killing QEMU.
    # The console is also logged to $log.
    log "starting QEMU (interactive): Ctrl-t x quits QEMU, Ctrl-t h help; 'poweroff -f' in dom0 shuts down"
    log "serial log: $log"
    trap - INT
    "${qemu[@]}" -display none -vga none -echr 0x14 \
        -chardev "stdio,id=con0,mux=on,signal=off,logfile=$log" \
        -serial chardev:con0 -mon chardev=con0 || true
    exit 0
fi

log "starting QEMU: xen=$(basename "$(readlink -f "$root/xen-hypervisor")") kernel=$(cat "$root/KVER") timeout=${timeout}s icount=$icount"
log "serial log: $log"
: > "$log"
"${qemu[@]}" -display none -vga none -monitor none -serial "file:$log" \
    </dev/null >"$run/qemu.stderr" 2>&1 &
qemu_pid=$!
t_start=${EPOCHREALTIME/./}
since() { local d=$(( ${EPOCHREALTIME/./} - t_start )); printf '%d.%01d' $((d / 1000000)) $(((d % 1000000) / 100000)); }

# --- follow the serial log -----------------------------------------------------
deadline=$(( $(date +%s) + timeout ))
done_line="" verdict="" in_scen=0 partial=""
seen_xen=0 seen_linux=0
exec 3< <(tail -n +1 -F "$log" 2>/dev/null)
while :; do
    if IFS= read -r -t 1 -u 3 chunk; then
        line=${partial}${chunk}; partial=""
    else
        rc=$?
        if [ $rc -gt 128 ]; then            # read timed out; keep partial text
            partial+=${chunk:-}
        fi
        if ! kill -0 "$qemu_pid" 2>/dev/null; then
            # QEMU exited; drain whatever is left before deciding.
            while IFS= read -r -t 0.5 -u 3 chunk; do
                line=${chunk%$'\r'}
                [ "$verbose" = 1 ] && printf '%s\n' "$line"
                case $line in "XEN-HARNESS DONE "*) done_line=$line ;; SCENARIO*) [ "$verbose" = 1 ] || printf '%s\n' "$line" ;; esac
            done
            break
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then verdict=timeout; break; fi
        continue
    fi
    line=${line%$'\r'}
    if [ "$verbose" = 1 ]; then
        printf '%s\n' "$line"
    elif [ "$in_scen" = 1 ]; then
        # Scenario phase: show everything except Xen's per-domain-creation
        # "HVM dN save: ..." / "HVMn restore: ..." chatter (loglvl=all).
        case $line in "(XEN) HVM"*) ;; *) printf '%s\n' "$line" ;; esac
    fi
    case $line in
        *"Xen version "*)       [ $seen_xen = 1 ] || log "Xen booting (+$(since)s)"; seen_xen=1 ;;
        *"Linux version "*)     [ $seen_linux = 1 ] || log "dom0 kernel booting (+$(since)s)"; seen_linux=1 ;;
        *"XEN-HARNESS DOM0-READY"*) log "dom0 up: xenstored, xenconsoled, xenbr0 ready (+$(since)s)"; in_scen=1 ;;
        "XEN-HARNESS DONE "*)   done_line=$line; log "scenarios finished (+$(since)s)"; break ;;
        *"Panic on CPU"*|*"Kernel panic"*|*"Hardware Dom0 crashed"*|*"cohort-dom0: FATAL"*)
            [ "$in_scen" = 1 ] || [ "$verbose" = 1 ] || printf '%s\n' "$line"
            verdict=panic ;;
    esac
    if [ "$verdict" = panic ]; then
        # let the rest of the panic message arrive, then stop
        sleep 2; break
    fi
done
exec 3<&-

# dom0 powers off after DONE; give QEMU a moment to exit by itself.
for _ in $(seq 1 50); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$qemu_pid" 2>/dev/null; then
    kill -9 "$qemu_pid" 2>/dev/null || true
    [ -n "$done_line" ] && log "QEMU did not exit after DONE; killed it"
fi
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=""

show_tail() {
    echo "----- last 60 lines of serial log ($log) -----" >&2
    tail -n 60 "$log" | tr -d '\r' >&2
    [ -s "$run/qemu.stderr" ] && { echo "----- qemu stderr -----" >&2; cat "$run/qemu.stderr" >&2; }
    echo "-----" >&2
}

if [ "$verdict" = timeout ]; then
    [ "$verbose" = 1 ] || show_tail
    log "FAIL: timeout after ${timeout}s (no XEN-HARNESS DONE line)"
    exit 124
fi
if [ -z "$done_line" ]; then
    [ "$verbose" = 1 ] || show_tail
    log "FAIL: ${verdict:-QEMU exited} before XEN-HARNESS DONE"
    exit 1
fi
passed=$(sed -n 's/.*passed=\([0-9]*\).*/\1/p' <<<"$done_line")
failed=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' <<<"$done_line")
log "result: passed=${passed:-?} failed=${failed:-?} (total $(elapsed)s)"
# Keep the serial log of failed runs (and of runs with an explicit --log).
if [ "${failed:-1}" = 0 ] && [ "$log" = "$run/serial.log" ] && [ "${COHORT_XEN_KEEP_LOGS:-0}" != 1 ]; then
    rm -rf "$run"
fi
echo "${passed:-0} passed, ${failed:-0} failed"
if [ "${failed:-1}" != 0 ]; then
    exit 1
fi
exit 0
