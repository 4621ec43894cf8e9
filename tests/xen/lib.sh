# shellcheck shell=bash
# Shared helpers for the real-Xen harness scripts (sourced, not executed).
# shellcheck disable=SC2034  # variables are used by the sourcing scripts

XEN_HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
XEN_CACHE=${COHORT_XEN_CACHE:-${COHORT_CACHE:-$HOME/.cache/cohort}/xen}
XEN_VER=4.17

# Progress / error output goes to stderr so that scripts can print a single
# result path on stdout.
# Times are seconds since the first script of this run started (exported so
# nested scripts share the origin).
export XEN_HARNESS_T0=${XEN_HARNESS_T0:-${EPOCHREALTIME/./}}
elapsed() {
    local d=$(( ${EPOCHREALTIME/./} - XEN_HARNESS_T0 ))
    printf '%d.%01d' $((d / 1000000)) $(((d % 1000000) / 100000))
}
log() { printf '[xen-harness %6ss] %s\n' "$(elapsed)" "$*" >&2; }
die() { printf '[xen-harness] ERROR: %s\n' "$*" >&2; exit 1; }

# Install missing host tools from Debian.  Each argument is "cmd:package".
# Runs `apt-get update` only if the install fails (stale/missing lists).
ensure_host_tools() {
    local missing=() spec cmd pkg
    for spec in "$@"; do
        cmd=${spec%%:*}; pkg=${spec#*:}
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing host tools: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
        apt-get update >/dev/null || die "apt-get update failed"
        apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
            || die "could not install host tools: ${missing[*]}"
    fi
}

# Short stable hash of stdin (cache keys).
short_hash() { sha256sum | cut -c1-16; }
