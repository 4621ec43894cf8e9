#!/usr/bin/env bash
# Assemble the harness dom0 initramfs (gzip'ed newc cpio) from the packages
# fetched by fetch.sh, and print its path.
#
#   tests/xen/build-initramfs.sh [FETCH_ROOT]
#
# Contents:
#   /init                         tests/xen/dom0/init
#   /bin/busybox + applet links   busybox-static
#   /usr/lib/xen-4.17/bin/...     xl, xenstored (C), xenconsoled, xen-init-dom0,
#                                 xenconsole, libxl-save-helper, readnotes
#   /usr/bin/xenstore-*           xenstore CLI
#   /usr/bin/iperf3               Debian's iperf3 3.12 (libiperf0, libsctp1,
#                                 libcrypto from libssl3), for dom0 and the
#                                 Linux reference guests
#   /lib/x86_64-linux-gnu/*.so*   their ldd closure (glibc from the host)
#   /lib/modules/KVER/...         Xen backend/bridge modules + dependencies,
#                                 load order in /etc/cohort/modules
#   /etc/xen/xl.conf, /etc/xen/scripts/vif-cohort
#   /usr/share/cohort/scenario-lib.sh
#   /linux-guest-init, /usr/bin/netref, xen-netfront (listed in
#   /etc/cohort/guest-modules)   for Linux reference guests: the same kernel
#                                 and this initramfs boot them (rdinit=)
#
# The result is cached as $XEN_CACHE/initramfs-<key>.cpio.gz where <key>
# hashes the fetched package set, the files in tests/xen/dom0/, this script
# and the host's glibc; guest images and scenarios are NOT part of it (boot.sh
# appends them as a second, small cpio archive).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

ensure_host_tools cpio:cpio gzip:gzip xz:xz-utils zstd:zstd gcc:gcc
# netref (tests/xen/linux-guest) is linked statically: it needs libc.a.
if [ ! -f /usr/lib/x86_64-linux-gnu/libc.a ]; then
    log "installing host tools: libc6-dev"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libc6-dev >/dev/null 2>&1 \
        || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libc6-dev >/dev/null; } \
        || die "could not install libc6-dev"
fi

root=${1:-$("$XEN_HARNESS_DIR/fetch.sh")}
[ -f "$root/.complete" ] || die "fetch root $root is incomplete; run tests/xen/fetch.sh"
kver=$(cat "$root/KVER")

# Kernel modules the dom0 loads (names as in the .ko file names).  Their
# dependencies are added automatically.  Extra ones: COHORT_XEN_EXTRA_MODULES.
# shellcheck disable=SC2206  # COHORT_XEN_EXTRA_MODULES is a space-separated list
MODULES=(xen-evtchn xen-privcmd xen-gntdev xen-gntalloc xenfs
         bridge stp llc xen-netback xen-blkback loop
         ${COHORT_XEN_EXTRA_MODULES:-})
XEN_BINS=(xl xenstored xenconsoled xen-init-dom0 xenconsole libxl-save-helper readnotes xenctx xen-hvmctx)
XENSTORE_CMDS=(xenstore-read xenstore-write xenstore-ls xenstore-list xenstore-rm
               xenstore-exists xenstore-watch xenstore-chmod)

ldso=/lib64/ld-linux-x86-64.so.2
[ -e "$ldso" ] || die "host has no $ldso (need an x86_64 glibc host)"

key=$( {
    cat "$root/MANIFEST"
    echo "${MODULES[*]}"
    cat "$0"
    find "$XEN_HARNESS_DIR/dom0" "$XEN_HARNESS_DIR/linux-guest" -type f | sort | xargs cat
    sha256sum "$(readlink -f "$ldso")" "$(readlink -f /lib/x86_64-linux-gnu/libc.so.6)"
} | short_hash)
out="$XEN_CACHE/initramfs-$key.cpio.gz"
if [ -s "$out" ]; then
    log "initramfs: cached ($out)"
    echo "$out"
    exit 0
fi

log "initramfs: building ($out)"
stage=$(mktemp -d /tmp/xenlab-initramfs.XXXXXX)
trap 'rm -rf "$stage"' EXIT
cd "$stage"

mkdir -p bin sbin usr/bin usr/sbin lib/x86_64-linux-gnu lib64 etc/cohort \
    etc/xen/scripts proc sys dev run tmp root cohort usr/share/cohort usr/lib \
    var/lib/xen var/lib/xenstored var/log/xen/console var/lock mnt
ln -s ../run var/run
# glibc's default search path on Debian is the multiarch dirs; keep one copy.
ln -s ../../lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu
# The kernel needs /dev/console before /init can mount devtmpfs.
mknod -m 600 dev/console c 5 1
mknod -m 666 dev/null c 1 3

# --- busybox ------------------------------------------------------------------
install -m 755 "$root/bin/busybox" bin/busybox
for applet in $(bin/busybox --list); do
    case $applet in busybox) continue ;; esac
    [ -e "bin/$applet" ] || ln -s busybox "bin/$applet"
done

# --- Xen tools + shared libraries ---------------------------------------------------
libpath="$root/lib/x86_64-linux-gnu:$root/usr/lib/x86_64-linux-gnu"
xbin=usr/lib/xen-$XEN_VER/bin
mkdir -p "$xbin"
copy_libs() {  # copy the ldd closure of ELF $1 into lib/x86_64-linux-gnu
    local line soname path
    while read -r line; do
        case $line in
            *"not found"*) die "ldd: $1: $line" ;;
            *"=> /"*)
                soname=${line%% =>*}; path=${line#*=> }; path=${path%% (*}
                [ -e "lib/x86_64-linux-gnu/$soname" ] || cp -L "$path" "lib/x86_64-linux-gnu/$soname" ;;
        esac
    done < <(LD_LIBRARY_PATH=$libpath ldd "$1")
}
for b in "${XEN_BINS[@]}"; do
    install -m 755 "$root/$xbin/$b" "$xbin/$b"
    copy_libs "$root/$xbin/$b"
done
install -m 755 "$root/usr/bin/xenstore" usr/bin/xenstore
copy_libs "$root/usr/bin/xenstore"
for c in "${XENSTORE_CMDS[@]}"; do ln -s xenstore "usr/bin/$c"; done
# iperf3 needs /dev/urandom (devtmpfs) and a writable /tmp (its stream
# buffers are mkstemp files), which dom0 and the Linux guests have.
install -m 755 "$root/usr/bin/iperf3" usr/bin/iperf3
copy_libs "$root/usr/bin/iperf3"
cp -L "$ldso" lib64/ld-linux-x86-64.so.2
ln -s ../../lib64/ld-linux-x86-64.so.2 lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
# xl (via glibc's pthread_cancel/backtrace) dlopens libgcc_s.so.1.
cp -L "$root/lib/x86_64-linux-gnu/libgcc_s.so.1" lib/x86_64-linux-gnu/
for b in "$xbin"/*; do ln -s "/$b" "usr/sbin/$(basename "$b")"; done

# --- kernel modules ---------------------------------------------------------
moddir="$root/lib/modules/$kver"
[ -d "$moddir" ] || die "no modules for $kver in $root"
declare -A kofile=()
while read -r f; do
    n=$(basename "$f"); n=${n%%.ko*}; kofile[${n//-/_}]=$f
done < <(find "$moddir/kernel" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz')

ko_cat() {  # uncompressed contents of a module file
    case $1 in
        *.ko.xz) xz -dc "$1" ;; *.ko.zst) zstd -qdc "$1" ;; *.ko.gz) gzip -dc "$1" ;; *) cat "$1" ;;
    esac
}
declare -A added=()
order=()
add_module() {  # depth-first: dependencies before the module itself
    local n=${1//-/_} f deps d
    [ -n "${added[$n]:-}" ] && return 0
    f=${kofile[$n]:-}
    [ -n "$f" ] || die "kernel module $1 not found in $moddir"
    added[$n]=1
    # The .modinfo section holds NUL-separated "key=value" strings.
    deps=$(ko_cat "$f" | tr '\0' '\n' | sed -n 's/^depends=//p' | head -n1)
    for d in ${deps//,/ }; do add_module "$d"; done
    local rel=${f#"$root"/}; rel=${rel%.xz}; rel=${rel%.zst}; rel=${rel%.gz}
    mkdir -p "$(dirname "$rel")"
    ko_cat "$f" > "$rel"   # busybox insmod gets plain .ko files
    order+=("/$rel")
}
for m in "${MODULES[@]}"; do add_module "$m"; done
printf '%s\n' "${order[@]}" > etc/cohort/modules
# The Linux reference guest's netfront (no dependencies), not loaded in dom0.
order=()
add_module xen-netfront
printf '%s\n' "${order[@]}" > etc/cohort/guest-modules

# --- config, init, scenario helpers ---------------------------------------------
install -m 755 "$XEN_HARNESS_DIR/dom0/init" init
install -m 644 "$XEN_HARNESS_DIR/dom0/xl.conf" etc/xen/xl.conf
install -m 755 "$XEN_HARNESS_DIR/dom0/vif-cohort" etc/xen/scripts/vif-cohort
install -m 644 "$XEN_HARNESS_DIR/dom0/scenario-lib.sh" usr/share/cohort/scenario-lib.sh
install -m 755 "$XEN_HARNESS_DIR/linux-guest/init" linux-guest-init
gcc -O2 -Wall -static -o usr/bin/netref "$XEN_HARNESS_DIR/linux-guest/netref.c" \
    || die "could not build netref (a static C program; needs gcc and libc6-dev)"
echo "root:x:0:0:root:/root:/bin/sh" > etc/passwd
echo "root:x:0:" > etc/group
echo dom0 > etc/hostname
cp "$root/MANIFEST" etc/cohort/MANIFEST

# --- archive ----------------------------------------------------------------
# Sorted names + --reproducible + gzip -n: identical inputs give identical bytes.
mkdir -p "$XEN_CACHE"
find . -mindepth 1 | LC_ALL=C sort \
    | cpio --quiet -o -H newc --owner=0:0 --reproducible \
    | gzip -n -6 > "$out.tmp"
mv "$out.tmp" "$out"
# Keep the cache bounded: only the 4 most recently built images stay.
find "$XEN_CACHE" -maxdepth 1 -name 'initramfs-*.cpio.gz' -printf '%T@ %p\n' \
    | sort -rn | tail -n +5 | cut -d' ' -f2- | xargs -r rm -f
log "initramfs: $(du -h "$out" | cut -f1) (${#order[@]} modules: ${order[*]##*/})"
echo "$out"
