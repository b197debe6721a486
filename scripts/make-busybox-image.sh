#!/usr/bin/env bash
# Build a busybox root filesystem tar from Debian's busybox-static, for
# `dockyard import` / `docker import` and for the tests.
#
#   scripts/make-busybox-image.sh OUT.tar
#
# Contents: /bin/busybox plus one symlink per applet (bin/sh -> busybox ...),
# the usual empty dirs (/tmp is 1777), a minimal /etc/passwd and /etc/group.
# Entries are sorted, owned by 0:0 (numeric) and dated SOURCE_DATE_EPOCH
# (default 0), so the same busybox binary always gives the same tar.
set -euo pipefail

if [ $# -ne 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    echo "usage: $0 OUT.tar" >&2
    exit 2
fi
out=$1
busybox=${BUSYBOX:-/bin/busybox}

if [ ! -x "$busybox" ]; then
    echo "$0: $busybox not found: apt-get install busybox-static (or run scripts/install.sh --deps-only)" >&2
    exit 1
fi
# A dynamically linked busybox (Debian's `busybox` package) cannot run in an
# empty rootfs: it needs libc. ldd fails on a static binary.
if ldd "$busybox" >/dev/null 2>&1; then
    echo "$0: $busybox is dynamically linked; apt-get install busybox-static" >&2
    exit 1
fi

umask 022
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,dev,etc,home,proc,root,run,sys,tmp,usr/bin,usr/sbin,var/tmp}
chmod 1777 "$stage/tmp" "$stage/var/tmp"
chmod 0700 "$stage/root"
install -m 0755 "$busybox" "$stage/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$stage/bin/$applet"
done

cat > "$stage/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
PASSWD
cat > "$stage/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
www-data:x:33:
users:x:100:
nogroup:x:65534:
GROUP
chmod 0644 "$stage/etc/passwd" "$stage/etc/group"

# Names without a leading ./ (like `docker export`), sorted, numeric root owner.
# Written beside OUT and renamed, so OUT is never a half-written tar.
mkdir -p "$(dirname "$out")"
out_dir=$(cd "$(dirname "$out")" && pwd)
tmp_out="$out_dir/.$(basename "$out").$$"
(cd "$stage" && LC_ALL=C tar --create --file="$tmp_out" --sort=name --format=gnu \
    --owner=0 --group=0 --numeric-owner --mtime="@${SOURCE_DATE_EPOCH:-0}" \
    -- $(LC_ALL=C ls -A))
mv -f "$tmp_out" "$out_dir/$(basename "$out")"
