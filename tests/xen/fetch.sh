#!/usr/bin/env bash
# Fetch the Debian bookworm packages the real-Xen harness needs and extract
# them (dpkg -x, never installed on the host) into a cache directory.
#
#   tests/xen/fetch.sh            -> prints the extracted root directory
#
# Cache layout (default ${COHORT_CACHE:-$HOME/.cache/cohort}/xen):
#   debs/                 downloaded .deb files (file names carry versions)
#   root-<key>/           all packages dpkg -x'ed together; <key> is a hash of
#                         the exact "package=version" list, so a new Debian
#                         point release gives a new root and an unchanged
#                         package set means zero downloads.
#   root-<key>/.complete  stamp written last (an interrupted run is redone)
#   root-<key>/MANIFEST   package=version list
#   root-<key>/xen-hypervisor   gunzipped Xen (QEMU's multiboot loader can't
#                               take xen.gz)
#   root-<key>/vmlinuz          dom0 kernel, root-<key>/KVER its version
#
# Environment:
#   COHORT_CACHE / COHORT_XEN_CACHE   cache location
#   COHORT_XEN_KERNEL_PKG             override dom0 kernel package name
#   COHORT_XEN_OFFLINE=1              don't consult apt at all; reuse the
#                                     most recently completed root
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

ensure_host_tools xz:xz-utils
mkdir -p "$XEN_CACHE/debs"

if [ "${COHORT_XEN_OFFLINE:-0}" = 1 ]; then
    [ -f "$XEN_CACHE/current/.complete" ] \
        || die "COHORT_XEN_OFFLINE=1 but no completed root under $XEN_CACHE/current"
    readlink -f "$XEN_CACHE/current"
    exit 0
fi

# --- which packages ---------------------------------------------------------
# The Xen hypervisor + toolstack, the toolstack's libraries (xl, xenstored,
# xenconsoled, xen-init-dom0 link against these; verified with ldd below),
# a static busybox for dom0 userland and libgcc-s1 because glibc dlopens
# libgcc_s.so.1 for pthread_cancel/backtraces in xl.  Generic non-Xen libs
# (libuuid, zlib, lzma, zstd) are fetched too so the dom0 is self-contained;
# only glibc itself (libc, libm, ld-linux) is copied from the host.
# iperf3 (3.12, with libiperf0 and what it links: libsctp1, libssl3's
# libcrypto) goes into dom0 and the Linux reference guests: the stock tool
# the lab measures Cohort with (tests/xen/scenarios/cohort-iperf3.sh).
# shellcheck disable=SC2206
PKGS=(
    xen-hypervisor-${XEN_VER}-amd64 xen-utils-${XEN_VER} xen-utils-common xenstore-utils
    libxenmisc${XEN_VER} libxencall1 libxenevtchn1 libxenforeignmemory1 libxengnttab1
    libxenstore4 libxentoollog1 libxendevicemodel1 libxenhypfs1 libxentoolcore1
    libyajl2 libuuid1 zlib1g liblzma5 libzstd1 libgcc-s1
    busybox-static
    iperf3 libiperf0 libsctp1 libssl3
)

# Versions come from the local apt lists.  If apt knows nothing (fresh
# machine / lists removed) refresh the lists once and retry.
apt_refreshed=0
refresh_lists() {
    [ "$apt_refreshed" = 1 ] && return 1
    log "apt lists missing or stale: running apt-get update"
    apt-get update >/dev/null || die "apt-get update failed"
    apt_refreshed=1
}

kernel_pkg=${COHORT_XEN_KERNEL_PKG:-}
if [ -z "$kernel_pkg" ]; then
    # linux-image-amd64 is the metapackage; its dependency is the real,
    # versioned package (e.g. linux-image-6.1.0-56-amd64).
    for _ in 1 2; do
        kernel_pkg=$(apt-cache depends linux-image-amd64 2>/dev/null \
            | awk '/Depends: linux-image-[0-9].*-amd64$/ {print $2; exit}' || true)
        [ -n "$kernel_pkg" ] && break
        refresh_lists || break
    done
    [ -n "$kernel_pkg" ] || die "cannot resolve linux-image-amd64 to a kernel package (apt-cache depends linux-image-amd64)"
fi
PKGS+=("$kernel_pkg")

# One apt-cache call for all packages (apt-cache loads every list on each
# invocation, so per-package calls would cost ~1 s each).
versions() {
    apt-cache policy "${PKGS[@]}" 2>/dev/null | awk '
        /^[^ ]/ {p=$1; sub(":$", "", p)}
        /Candidate:/ && $2 != "(none)" {print p "=" $2}'
}
manifest=$(versions)
if [ "$(grep -c . <<<"$manifest")" -ne ${#PKGS[@]} ]; then
    refresh_lists && manifest=$(versions)
fi
for p in "${PKGS[@]}"; do
    grep -q "^$p=" <<<"$manifest" \
        || die "no installable candidate for package $p (is this Debian bookworm with main enabled?)"
done
manifest+=$'\n'

# Bump LAYOUT when the post-processing below changes, to invalidate roots.
LAYOUT=2
key=$( (printf '%s' "$manifest"; echo "layout=$LAYOUT") | short_hash)
root="$XEN_CACHE/root-$key"

if [ -f "$root/.complete" ]; then
    ln -sfn "root-$key" "$XEN_CACHE/current"
    log "fetch: cached ($root)"
    echo "$root"
    exit 0
fi

# --- download what's missing ------------------------------------------------
deb_for() {  # path of the cached .deb for package $1 version $2, if any
    local enc=${2//:/%3a}
    compgen -G "$XEN_CACHE/debs/${1}_${enc}_*.deb" | head -n1 || true
}

need=()
while IFS='=' read -r p v; do
    [ -n "$p" ] || continue
    [ -n "$(deb_for "$p" "$v")" ] || need+=("$p=$v")
done <<<"$manifest"

if [ ${#need[@]} -gt 0 ]; then
    log "fetch: downloading ${#need[@]} packages: ${need[*]%%=*}"
    # apt drops privileges to _apt for downloads; give it a writable dir so
    # it doesn't warn about an unsandboxed download.
    dl=$(mktemp -d "$XEN_CACHE/debs/.dl.XXXXXX")
    trap 'rm -rf "$dl"' EXIT
    if id _apt >/dev/null 2>&1; then chown _apt "$dl"; fi
    if ! (cd "$dl" && apt-get download "${need[@]}" >/dev/null 2>"$dl/.err"); then
        # Most common cause: the lists name versions the mirror no longer
        # has.  Refresh them once and start over (versions, hence the key,
        # may change).
        cat "$dl/.err" >&2
        [ "${XEN_FETCH_RETRIED:-0}" = 1 ] && die "apt-get download failed even after apt-get update"
        refresh_lists
        rm -rf "$dl"
        exec env XEN_FETCH_RETRIED=1 "$0" "$@"
    fi
    mv "$dl"/*.deb "$XEN_CACHE/debs/"
fi

# --- extract ------------------------------------------------------------------
log "fetch: extracting into $root"
rm -rf "$root.tmp"
mkdir -p "$root.tmp"
while IFS='=' read -r p v; do
    [ -n "$p" ] || continue
    deb=$(deb_for "$p" "$v")
    [ -n "$deb" ] || die "missing .deb for $p=$v after download"
    dpkg -x "$deb" "$root.tmp"
done <<<"$manifest"
printf '%s' "$manifest" > "$root.tmp/MANIFEST"

# Xen: QEMU's multiboot loader wants the plain (32-bit ELF) image.
xengz=$(compgen -G "$root.tmp/boot/xen-${XEN_VER}-amd64.gz" | head -n1 || true)
[ -n "$xengz" ] || die "xen-${XEN_VER}-amd64.gz not found in xen-hypervisor package"
gzip -dc "$xengz" > "$root.tmp/xen-hypervisor"

vmlinuz=$(compgen -G "$root.tmp/boot/vmlinuz-*" | head -n1 || true)
[ -n "$vmlinuz" ] || die "no vmlinuz in $kernel_pkg"
ln -s "boot/$(basename "$vmlinuz")" "$root.tmp/vmlinuz"
basename "$vmlinuz" | sed 's/^vmlinuz-//' > "$root.tmp/KVER"

# Also keep the kernel as a plain ELF vmlinux: Xen can boot a PV dom0 from
# either, but decompressing the xz bzImage payload inside Xen under TCG costs
# ~3.5 s on every boot; doing it once here is free on later runs.
off=$(LC_ALL=C grep -obUaP '\xFD7zXZ\x00' "$vmlinuz" | head -n1 | cut -d: -f1 || true)
# (process substitution, not a pipe: xz stops reading after the stream and
# tail's SIGPIPE would fail the pipeline under pipefail)
if [ -n "$off" ] && xz -dcq --single-stream < <(tail -c +"$((off + 1))" "$vmlinuz") > "$root.tmp/vmlinux" 2>/dev/null \
    && [ "$(head -c4 "$root.tmp/vmlinux" | od -An -c | tr -d ' ')" = '177ELF' ]; then
    :
else
    log "fetch: could not extract ELF vmlinux from $(basename "$vmlinuz"); dom0 will boot the bzImage"
    rm -f "$root.tmp/vmlinux"
fi

# --- verify the toolstack's (and iperf3's) shared-library closure with ldd -----
# Everything must resolve either inside the extracted tree or to glibc
# (which build-initramfs.sh copies from the host).
libpath="$root.tmp/lib/x86_64-linux-gnu:$root.tmp/usr/lib/x86_64-linux-gnu"
bad=""
for b in xl xenstored xenconsoled xen-init-dom0 xenconsole libxl-save-helper /usr/bin/iperf3; do
    case $b in
        /*) f="$root.tmp$b" ;;
        *) f="$root.tmp/usr/lib/xen-${XEN_VER}/bin/$b" ;;
    esac
    [ -x "$f" ] || die "expected binary missing: $f"
    while read -r line; do
        case $line in
            *"not found"*) bad+="  $b: $line"$'\n' ;;
            *"=> /"*)
                path=${line#*=> }; path=${path%% (*}
                case $path in
                    "$root.tmp"/*) ;;
                    */libc.so.6|*/libm.so.6|*/ld-linux-x86-64.so.2) ;;
                    *) bad+="  $b: $line (from host, not fetched)"$'\n' ;;
                esac ;;
        esac
    done < <(LD_LIBRARY_PATH=$libpath ldd "$f")
done
if [ -n "$bad" ]; then
    printf '%s' "$bad" >&2
    die "unresolved shared libraries (add the owning package to PKGS in fetch.sh)"
fi

touch "$root.tmp/.complete"
rm -rf "$root"
mv "$root.tmp" "$root"
ln -sfn "root-$key" "$XEN_CACHE/current"
# Keep the cache bounded: the two most recent extracted roots stay (the .debs
# of older versions are small next to an extracted kernel's modules).
find "$XEN_CACHE" -maxdepth 1 -type d -name 'root-*' -printf '%T@ %p\n' \
    | sort -rn | tail -n +3 | cut -d' ' -f2- | xargs -r rm -rf
log "fetch: done ($(tr '\n' ' ' < "$root/MANIFEST" | grep -o 'xen-hypervisor[^ ]*') $(grep -o "^$kernel_pkg=[^ ]*" "$root/MANIFEST"))"
echo "$root"
