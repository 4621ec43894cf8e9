#!/usr/bin/env bash
# Coverage-guided fuzzing on the stable toolchain (issue 14).
#
#   fuzz/run.sh [SECONDS] [TARGET...]   fuzz each target SECONDS (default 120)
#   fuzz/run.sh --merge [TARGET...]     minimise fuzz/corpus/T with what the
#                                       runs found (libFuzzer -merge=1)
#   fuzz/run.sh --list                  the targets
#
# FUZZ_RUNS=N stops each target after N executions instead (SECONDS
# still bounds the time).
#
# Builds fuzz/targets (libfuzzer-sys; its C++ part needs g++) with the
# stable sancov flags, no sanitizer, into its own target directory
# ($FUZZ_TARGET_DIR, default target/fuzz-sancov at the top), then runs one
# target at a time. The committed seeds, corpus and regressions are read
# only; new inputs go to target/fuzz-corpus/T, crash files to
# target/fuzz-artifacts/T. Prints one line per target and a last line
# `N passed, M failed`; exits 1 if libFuzzer found a crash in any target.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

triple=x86_64-unknown-linux-gnu
target_dir=${FUZZ_TARGET_DIR:-$root/target/fuzz-sancov}
work=${FUZZ_WORK_DIR:-$root/target}
bindir=$target_dir/$triple/release
# Stable flags only (no -Z): what `cargo fuzz -s none` passes, without
# the sanitizer. --target below keeps them off build scripts and proc
# macros, which could not link against the sancov callbacks.
flags=(
    -Cpasses=sancov-module
    -Cllvm-args=-sanitizer-coverage-level=4
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
    -Cllvm-args=-sanitizer-coverage-pc-table
    -Cllvm-args=-sanitizer-coverage-trace-compares
    -Cllvm-args=-simplifycfg-branch-fold-threshold=0
    --cfg fuzzing
    -Cdebug-assertions
    -Coverflow-checks
    -Ccodegen-units=1
)

say() { printf 'fuzz: %s\n' "$*" >&2; }

targets_all() {
    local f
    for f in "$here"/targets/fuzz_targets/*.rs; do
        basename "$f" .rs
    done
}

build() {
    say "building the fuzz targets into $target_dir"
    RUSTFLAGS="${flags[*]}" cargo build --manifest-path "$here/targets/Cargo.toml" \
        --release --bins --target "$triple" --target-dir "$target_dir" --quiet
}

# The value after `key` on the last libFuzzer status line of a log.
status_field() {
    local key=$1 log=$2
    grep -a '^#[0-9]' "$log" | tail -n 1 | grep -o "$key: *[0-9]*" | grep -o '[0-9]*$' || true
}

fuzz_one() {
    local t=$1 secs=$2
    local corpus=$work/fuzz-corpus/$t art=$work/fuzz-artifacts/$t log=$work/fuzz-logs/$t.log
    mkdir -p "$corpus" "$art" "$(dirname "$log")"
    local dirs=("$corpus") d
    for d in seeds corpus regressions; do
        [ -d "$here/$d/$t" ] && dirs+=("$here/$d/$t")
    done
    local dict=()
    [ -f "$here/dicts/$t.dict" ] && dict=("-dict=$here/dicts/$t.dict")
    local runs=()
    [ -n "${FUZZ_RUNS:-}" ] && runs=("-runs=$FUZZ_RUNS")
    local rc=0
    # New inputs are written to the first directory only.
    "$bindir/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$art/" "${runs[@]}" "${dict[@]}" "${dirs[@]}" >"$log" 2>&1 || rc=$?
    local execs eps cov ft corp
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    [ -n "$execs" ] || execs=$(grep -a '^#[0-9]' "$log" | tail -n 1 | sed 's/^#\([0-9]*\).*/\1/' || true)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(status_field cov "$log")
    ft=$(status_field ft "$log")
    corp=$(status_field corp "$log")
    local crash
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1 || true)
    if [ "$rc" -eq 0 ] && [ -z "$crash" ]; then
        printf '%-22s ok      execs=%s exec/s=%s cov=%s ft=%s corpus=%s crashes=0\n' \
            "$t" "${execs:-0}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}"
        return 0
    fi
    printf '%-22s FAILED  execs=%s exec/s=%s cov=%s ft=%s corpus=%s crashes=1 exit=%s\n' \
        "$t" "${execs:-0}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$rc"
    grep -a -m1 -A1 'panicked at' "$log" | sed 's/^/    /' || true
    grep -a -m1 '^Base64:' "$log" | sed 's/^/    /' || true
    printf '    crash file: %s\n' "${crash:-none (see $log)}"
    printf '    reproduce:  %s %s\n' "$bindir/$t" "${crash:-INPUT}"
    printf '    keep it:    cp %s %s/regressions/%s/  (cargo test replays it)\n' "${crash:-INPUT}" "$here" "$t"
    printf '    log:        %s\n' "$log"
    return 1
}

# The committed corpus becomes the fewest inputs that, with the seeds, cover
# every feature of the committed corpus and the runs' inputs: the seeds are
# put first in a fresh directory (so what they cover counts as covered),
# the rest merged into it, then the seeds taken out again.
merge() {
    local t tmp f
    for t in "$@"; do
        tmp=$work/fuzz-merge/$t
        rm -rf "$tmp"
        mkdir -p "$tmp" "$here/corpus/$t" "$work/fuzz-corpus/$t"
        if [ -d "$here/seeds/$t" ]; then
            cp "$here/seeds/$t"/* "$tmp"/
        fi
        "$bindir/$t" -merge=1 -timeout=10 -rss_limit_mb=2048 "$tmp" "$here/corpus/$t" "$work/fuzz-corpus/$t" \
            >"$work/fuzz-logs/$t.merge.log" 2>&1
        if [ -d "$here/seeds/$t" ]; then
            for f in "$here/seeds/$t"/*; do
                rm -f "$tmp/$(basename "$f")"
            done
        fi
        rm -rf "$here/corpus/$t"
        mv "$tmp" "$here/corpus/$t"
        say "$t: corpus $(find "$here/corpus/$t" -type f | wc -l) files, $(du -sh --apparent-size "$here/corpus/$t" | cut -f1)"
    done
}

main() {
    local secs=120
    case "${1:-}" in
    --list)
        targets_all
        return 0
        ;;
    --merge)
        shift
        local ts=("$@")
        [ ${#ts[@]} -gt 0 ] || mapfile -t ts < <(targets_all)
        build
        mkdir -p "$work/fuzz-logs"
        merge "${ts[@]}"
        return 0
        ;;
    -h | --help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
        return 0
        ;;
    esac
    if [[ "${1:-}" =~ ^[0-9]+$ ]]; then
        secs=$1
        shift
    fi
    local ts=("$@") t
    [ ${#ts[@]} -gt 0 ] || mapfile -t ts < <(targets_all)
    for t in "${ts[@]}"; do
        [ -f "$here/targets/fuzz_targets/$t.rs" ] || {
            say "no target $t (targets: $(targets_all | tr '\n' ' '))"
            return 2
        }
    done
    build
    say "${#ts[@]} target(s), ${secs} s each, one at a time"
    local passed=0 failed=0
    for t in "${ts[@]}"; do
        if fuzz_one "$t" "$secs"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
        fi
    done
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# On one line: bash then never reads past it, even if the file changes
# while a long run goes on.
main "$@"; exit
