#!/usr/bin/env bash
# Install CRIU >= 4.2 into a private prefix, for dockyard's checkpoint/restore.
#
#   scripts/install-criu.sh [PREFIX]     (default /opt/dockyard-criu)
#
# Debian 12's criu (3.17) cannot run on kernels >= 6.13 and Debian 13's (4.1)
# cannot dump a container holding an inet socket on kernels >= 6.16 (see
# ../shared/notes/criu.md). CRIU 4.2 is in Debian testing: we download it and
# its Depends closure with a temporary apt source, unpack the .debs into
# PREFIX (never installed into the system: the system's libc and packages are
# untouched), and write PREFIX/bin/criu, which runs criu through the prefix's
# own loader with --library-path (so the tools criu runs, iptables-restore,
# tar, ip, keep the system's libraries). The temporary source is always
# removed and `apt-get update` run again, even on failure.
#
# Safe to run again: a prefix whose criu reports >= 4.2 is kept.
set -euo pipefail

prefix=${1:-${DOCKYARD_CRIU_PREFIX:-/opt/dockyard-criu}}
suite=${DOCKYARD_CRIU_SUITE:-forky}
say() { printf '==> %s\n' "$*"; }
die() { printf 'install-criu.sh: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"

wrapper=$prefix/bin/criu
if [ -x "$wrapper" ] && ver=$("$wrapper" --version 2>/dev/null | sed -n 's/^Version: *//p') &&
        [ -n "$ver" ] && [ "$(printf '%s\n4.2\n' "$ver" | sort -V | head -1)" = 4.2 ]; then
    say "criu $ver: already in $prefix"
    exit 0
fi

arch=$(dpkg --print-architecture)
case "$arch" in
    amd64) triplet=x86_64-linux-gnu; loader=ld-linux-x86-64.so.2 ;;
    arm64) triplet=aarch64-linux-gnu; loader=ld-linux-aarch64.so.1 ;;
    *) die "unsupported architecture $arch" ;;
esac

# Same mirror and keyring as the system's main Debian source.
mirror=http://deb.debian.org/debian
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
src=/etc/apt/sources.list.d/dockyard-criu-$suite.sources
work=$(mktemp -d)
cleanup() {
    local rc=$?
    if [ -e "$src" ]; then
        rm -f "$src"
        apt-get update -q >/dev/null 2>&1 || echo "install-criu.sh: apt-get update after removing $src failed" >&2
    fi
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT INT TERM

say "criu: temporary apt source for Debian $suite ($src)"
cat > "$src" <<EOF
Types: deb
URIs: $mirror
Suites: $suite
Components: main
Signed-By: $keyring
EOF
# Never let this suite win for anything: download only, never install from it.
apt-get update -q >/dev/null

pkgs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
           --no-replaces --no-enhances "criu/$suite" | grep -E '^[a-z0-9]' | grep -v '^<' | sort -u)
[ -n "$pkgs" ] || die "no criu in $suite"
say "criu: downloading $(wc -w <<<"$pkgs") packages from $suite"
( cd "$work" && for p in $pkgs; do
    # a virtual or arch-less name may not download by itself; its provider is in the list
    apt-get download -q "$p/$suite" >/dev/null 2>&1 || apt-get download -q "$p" >/dev/null 2>&1 ||
        echo "install-criu.sh: skipped $p" >&2
  done )
ls "$work"/criu_*.deb >/dev/null 2>&1 || die "criu .deb did not download"

tmp_prefix=$prefix.new
rm -rf "$tmp_prefix"
mkdir -p "$tmp_prefix"
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$tmp_prefix"; done
mkdir -p "$tmp_prefix/bin"
cat > "$tmp_prefix/bin/criu" <<EOF
#!/bin/sh
# criu from Debian $suite, run through its own loader and libraries
# (--library-path, not LD_LIBRARY_PATH: the tools criu runs keep the system's).
exec $prefix/usr/lib/$triplet/$loader --library-path $prefix/usr/lib/$triplet:$prefix/lib/$triplet $prefix/usr/sbin/criu "\$@"
EOF
chmod 755 "$tmp_prefix/bin/criu"
rm -rf "$prefix"
mv "$tmp_prefix" "$prefix"
[ -e "$prefix/usr/lib/$triplet/$loader" ] || die "the prefix has no $loader"
ver=$("$wrapper" --version | sed -n 's/^Version: *//p')
say "criu $ver installed in $prefix (run it as $wrapper)"
