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

# shellcheck source=scripts/testing-debs.sh
. "$(dirname "${BASH_SOURCE[0]}")/testing-debs.sh"
testing_debs_begin criu "$suite"
testing_debs_fetch criu

tmp_prefix=$prefix.new
rm -rf "$tmp_prefix"
mkdir -p "$tmp_prefix"
testing_debs_unpack "$tmp_prefix"
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
