#!/usr/bin/env bash
# Install a crun built with CRIU support into a private prefix, so checkpoint/
# restore works on dockyard's default runtime.
#
#   scripts/install-crun.sh [PREFIX]     (default /opt/dockyard-crun)
#
# Debian 12's crun (1.8.1) is built without CRIU: `docker checkpoint create`
# then needs --runtime runc. Debian testing's crun (1.2x) is built with it and
# dlopens libcriu.so.2, which runs `criu swrk` from PATH (the daemon puts the
# CRIU of scripts/install-criu.sh first there). As install-criu.sh does: a
# temporary apt source for Debian testing, `apt-get download` of crun, its
# Depends closure and libcriu2 (+ libprotobuf-c1; crun only Recommends it),
# `dpkg-deb -x` into PREFIX (never installed into the system: the system's
# libc, crun and packages are untouched). PREFIX/bin/crun runs crun through
# the prefix's own loader with --library-path (crun re-executes itself from
# a sealed memfd copy of /proc/self/exe, which is then that loader: its
# command line, the loader's, is kept, so the copy runs crun the same way;
# the container's own process is exec'd with the container's libraries).
# PREFIX/crun.env names the loader, library path and binary for the daemon,
# which execs them directly (runtime/runtimes.py). The temporary source is
# always removed and `apt-get update` run again, even on failure.
#
# Safe to run again: a prefix whose crun runs and reports +CRIU is kept.
set -euo pipefail

prefix=${1:-${DOCKYARD_CRUN_PREFIX:-/opt/dockyard-crun}}
suite=${DOCKYARD_CRUN_SUITE:-forky}
say() { printf '==> %s\n' "$*"; }
die() { printf 'install-crun.sh: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"

wrapper=$prefix/bin/crun
if [ -x "$wrapper" ] && [ -e "$prefix/crun.env" ] && out=$("$wrapper" --version 2>/dev/null) &&
        grep -q '+CRIU' <<<"$out" && ls "$prefix"/usr/lib/*/libcriu.so.2 >/dev/null 2>&1; then
    say "crun $(sed -n 's/^crun version //p' <<<"$out"): already in $prefix"
    exit 0
fi

# shellcheck source=scripts/testing-debs.sh
. "$(dirname "${BASH_SOURCE[0]}")/testing-debs.sh"
testing_debs_begin crun "$suite"
# libcriu2 only talks to `criu swrk` (found on PATH): its Depends on criu is not wanted here
testing_debs_fetch crun libcriu2 libprotobuf-c1
ls "$work"/libcriu2_*.deb >/dev/null 2>&1 || die "libcriu2 .deb did not download"

tmp_prefix=$prefix.new
rm -rf "$tmp_prefix"
mkdir -p "$tmp_prefix"
testing_debs_unpack "$tmp_prefix"
rm -rf "$tmp_prefix/usr/share/man" "$tmp_prefix/usr/share/doc" "$tmp_prefix/usr/lib/$triplet/libcrun.a"
libpath=$prefix/usr/lib/$triplet:$prefix/lib/$triplet
mkdir -p "$tmp_prefix/bin"
cat > "$tmp_prefix/bin/crun" <<EOF
#!/bin/sh
# crun from Debian $suite, run through its own loader and libraries
# (--library-path, not LD_LIBRARY_PATH: the criu it runs keeps its own).
exec $prefix/usr/lib/$triplet/$loader --library-path $libpath $prefix/usr/bin/crun "\$@"
EOF
chmod 755 "$tmp_prefix/bin/crun"
cat > "$tmp_prefix/crun.env" <<EOF
# written by scripts/install-crun.sh; read by dockyardd (runtime/runtimes.py)
CRUN_LOADER=$prefix/usr/lib/$triplet/$loader
CRUN_LIBRARY_PATH=$libpath
CRUN_BINARY=$prefix/usr/bin/crun
EOF
rm -rf "$prefix"
mv "$tmp_prefix" "$prefix"
[ -e "$prefix/usr/lib/$triplet/$loader" ] || die "the prefix has no $loader"
out=$("$wrapper" --version) || die "$wrapper does not run"
grep -q '+CRIU' <<<"$out" || die "the crun of $suite is built without CRIU"
say "crun $(sed -n 's/^crun version //p' <<<"$out") installed in $prefix (run it as $wrapper)"
