"""What `docker cp`, `docker export`, `docker diff` and `docker commit` do
to a container's files, given its root as a host path (fsview.py).

- stat: the `X-Docker-Container-Path-Stat` document (mode in Go's
  os.FileMode bits, which the CLI decodes);
- get_tar: a tar of one path, entries named from the path's base name;
- put_tar: a tar extracted under a directory with the layer unpacker
  (unpack.py), so `..` names, absolute names and symlinks met on the way
  never lead outside that directory, hence never outside the container;
- export_tar: the whole root;
- changes / layer_tar: the upper dir against the image's layers, as
  Docker's overlay driver reports and commits them (whiteouts back to
  `.wh.` names). Mount targets the runtime creates for /etc/hosts,
  /etc/hostname, /etc/resolv.conf, /dev, /proc, /sys are left out, as
  Docker keeps them in its hidden init layer.
"""
from __future__ import annotations

import base64
import json
import os
import posixpath
import stat
import tarfile
from typing import BinaryIO

from ..errors import InvalidParameter, NotFound, SystemError_
from ..images.times import format_ns
from ..images.unpack import LayerFormatError, _Extractor, _lstat, clean_name
from ..images.whiteouts import OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX, is_whiteout
from .fsview import mount_of, resolve, scoped

# Go os.FileMode bits
_GO_DIR, _GO_SYMLINK, _GO_DEVICE, _GO_PIPE = 1 << 31, 1 << 27, 1 << 26, 1 << 25
_GO_SOCKET, _GO_SETUID, _GO_SETGID, _GO_CHARDEV, _GO_STICKY = 1 << 24, 1 << 23, 1 << 22, 1 << 21, 1 << 20
_CHUNK = 1 << 20

INIT_PATHS = {"etc/hosts", "etc/hostname", "etc/resolv.conf", "etc/mtab", ".dockerenv"}
INIT_TREES = ("dev", "proc", "sys")


def go_mode(st: os.stat_result) -> int:
    m = st.st_mode
    out = stat.S_IMODE(m) & 0o777
    if stat.S_ISDIR(m):
        out |= _GO_DIR
    elif stat.S_ISLNK(m):
        out |= _GO_SYMLINK
    elif stat.S_ISCHR(m):
        out |= _GO_DEVICE | _GO_CHARDEV
    elif stat.S_ISBLK(m):
        out |= _GO_DEVICE
    elif stat.S_ISFIFO(m):
        out |= _GO_PIPE
    elif stat.S_ISSOCK(m):
        out |= _GO_SOCKET
    if m & stat.S_ISUID:
        out |= _GO_SETUID
    if m & stat.S_ISGID:
        out |= _GO_SETGID
    if m & stat.S_ISVTX:
        out |= _GO_STICKY
    return out


def _not_found(path: str, cname: str) -> NotFound:
    return NotFound(f"Could not find the file {path} in container {cname}")


def stat_path(root: str, path: str, cname: str, mounts: dict[str, str] | None = None) -> dict:
    """containerStatPath: lstat of the path (its parents' links followed);
    linkTarget is where a symlink leads, as a container path."""
    host = scoped(root, path, follow_last=False, mounts=mounts)
    try:
        st = os.lstat(host)
    except FileNotFoundError:
        raise _not_found(path, cname) from None
    except NotADirectoryError:
        raise _not_found(path, cname) from None
    link = ""
    if stat.S_ISLNK(st.st_mode):
        link = resolve(root, path, follow_last=True, mounts=mounts)[1]
    name = posixpath.basename(path.rstrip("/")) or "/"
    return {"name": name, "size": st.st_size, "mode": go_mode(st),
            "mtime": format_ns(st.st_mtime_ns), "linkTarget": link}


def stat_header(doc: dict) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


# ---------------------------------------------------------------- reading

def _tarinfo(tf: tarfile.TarFile, path: str, arcname: str) -> tarfile.TarInfo | None:
    ti = tf.gettarinfo(path, arcname)
    if ti is None:
        return None                     # a socket: tar has no type for it
    ti.uname = ti.gname = ""
    return ti


def add_tree(tf: tarfile.TarFile, path: str, arcname: str, skip=None) -> None:
    """Add `path` (not following it if it is a link) and, for a directory,
    everything below it, in sorted order; hard links as links."""
    ti = _tarinfo(tf, path, arcname)
    if ti is None:
        return
    if ti.isreg():
        with open(path, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW)) as f:
            tf.addfile(ti, f)
    else:
        tf.addfile(ti)
    if ti.isdir():
        for name in sorted(os.listdir(path)):
            child = f"{arcname}/{name}" if arcname else name
            if skip and skip(child):
                continue
            add_tree(tf, os.path.join(path, name), child, skip)


def get_tar(root: str, path: str, cname: str, out: BinaryIO, mounts: dict[str, str] | None = None) -> None:
    """containerArchivePath: the tar of `path`, rebased to its base name."""
    host = scoped(root, path, follow_last=False, mounts=mounts)
    if not os.path.lexists(host):
        raise _not_found(path, cname)
    base = posixpath.basename(path.rstrip("/")) if not path.endswith("/.") else "."
    if path.rstrip("/") == "":
        base = "."
    # a directory's entries are "<base>", "<base>/…"; for ".../." that is ".", "./…"
    # (moby's TarResourceRebaseOpts with IncludeSourceDir), which the CLI renames
    tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
    try:
        add_tree(tf, host, base)
    finally:
        tf.close()


def export_tar(root: str, out: BinaryIO) -> None:
    tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
    try:
        for name in sorted(os.listdir(root)):
            add_tree(tf, os.path.join(root, name), name)
    finally:
        tf.close()


# ---------------------------------------------------------------- writing

def check_put_target(root: str, path: str, cname: str, mounts: dict[str, str] | None = None,
                     read_only: set[str] = frozenset(), rootfs_read_only: bool = False) -> str:
    """The directory to extract into; Docker's errors for a missing or
    non-directory one, a read-only volume, or a read-only rootfs."""
    host, cpath = resolve(root, path, follow_last=True, mounts=mounts)
    mount = mount_of(cpath, list((mounts or {}).keys()) + list(read_only))
    if mount is not None and mount in read_only:
        raise InvalidParameter("mounted volume is marked read-only")
    if mount is None and rootfs_read_only:
        raise InvalidParameter("container rootfs is marked read-only")
    try:
        st = os.stat(host)
    except (FileNotFoundError, NotADirectoryError):
        raise _not_found(path, cname) from None
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidParameter("extraction point is not a directory")
    return host


def put_tar(dest: str, src: BinaryIO, no_overwrite_dir_non_dir: bool, copy_uid_gid: bool,
            owner: tuple[int, int] | None = None) -> None:
    """Unpack a `docker cp` archive at `dest`. Entries belong to the container's
    root, or with `copy_uid_gid` (cp -a) keep the archive's ids, unless `owner`
    (the container's Config.User, as moby does for cp -a) is given."""
    ex = _Extractor(dest)
    try:
        with tarfile.open(fileobj=src, mode="r|*", encoding="utf-8", errors="surrogateescape") as tf:
            for m in tf:
                if copy_uid_gid and owner is not None:
                    m.uid, m.gid = owner
                elif not copy_uid_gid:
                    m.uid = m.gid = 0          # owned by the container's root, as Docker does
                if no_overwrite_dir_non_dir:
                    _check_overwrite(ex, m)
                ex.entry(tf, m)
        ex.finish()
    except LayerFormatError as e:
        raise InvalidParameter(e.message.replace("layer archive", "archive")
                               .replace("outside the layer", "outside the destination")) from None
    except (tarfile.TarError, EOFError) as e:
        raise InvalidParameter(f"invalid tar archive: {e}") from None
    except OSError as e:            # disk full, a read-only place, a name too long...
        raise SystemError_(f"extracting archive: {e.strerror or e}") from None
    finally:
        ex.close()


def _check_overwrite(ex: _Extractor, m: tarfile.TarInfo) -> None:
    parts = clean_name(m.name)
    if not parts:
        return
    try:
        pfd = ex.target.open_dir(parts[:-1], create=False)
    except OSError:
        return
    old = _lstat(pfd, parts[-1])
    if old is None:
        return
    if stat.S_ISDIR(old.st_mode) and not m.isdir():
        raise InvalidParameter(f'cannot overwrite directory "/{"/".join(parts)}" with non-directory "{m.name}"')
    if not stat.S_ISDIR(old.st_mode) and m.isdir():
        raise InvalidParameter(f'cannot overwrite non-directory "/{"/".join(parts)}" with directory "{m.name}"')


# ---------------------------------------------------------------- changes and commit

def _init_path(rel: str) -> bool:
    return rel in INIT_PATHS or rel.split("/", 1)[0] in INIT_TREES


def _lower_stat(lowers: list[str], rel: str) -> os.stat_result | None:
    for layer in lowers:                    # topmost first
        try:
            st = os.lstat(os.path.join(layer, rel))
        except (FileNotFoundError, NotADirectoryError):
            continue
        return None if is_whiteout(st) else st
    return None


def changes(upper: str, lowers: list[str]) -> list[dict]:
    """GET /containers/{id}/changes: Kind 0 modified, 1 added, 2 deleted,
    in walk order, each changed entry's parent directory listed as modified."""
    out: list[dict] = []
    listed: set[str] = set()

    def record(rel: str, kind: int) -> None:
        if kind in (1, 2):
            parent = posixpath.dirname(rel)
            if parent and parent not in listed:
                listed.add(parent)
                out.append({"Path": "/" + parent, "Kind": 0})
        if rel in listed:
            return
        listed.add(rel)
        out.append({"Path": "/" + rel, "Kind": kind})

    def walk(rel_dir: str) -> None:
        host_dir = os.path.join(upper, rel_dir) if rel_dir else upper
        for name in sorted(os.listdir(host_dir)):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if _init_path(rel):
                continue
            st = os.lstat(os.path.join(upper, rel))
            if is_whiteout(st):
                record(rel, 2)
                continue
            low = _lower_stat(lowers, rel)
            if low is None:
                record(rel, 1)
            elif not (stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(low.st_mode)):
                record(rel, 0)
            elif (st.st_mode, st.st_uid, st.st_gid) != (low.st_mode, low.st_uid, low.st_gid):
                record(rel, 0)          # a copied-up dir is only a change if its metadata is
            if stat.S_ISDIR(st.st_mode):
                walk(rel)

    walk("")
    return out


def layer_tar(upper: str, out: BinaryIO) -> None:
    """The container's changes as an image layer: the upper dir, overlay
    whiteouts turned back into `.wh.` entries and opaque dirs into
    `.wh..wh..opq`."""
    tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)

    def add(path: str, arc: str) -> None:
        st = os.lstat(path)
        if is_whiteout(st):
            ti = tarfile.TarInfo(posixpath.join(posixpath.dirname(arc), WHITEOUT_PREFIX + posixpath.basename(arc)))
            ti.mtime = int(st.st_mtime)
            tf.addfile(ti)
            return
        ti = _tarinfo(tf, path, arc)
        if ti is None:
            return
        if ti.isreg():
            with open(path, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW)) as f:
                tf.addfile(ti, f)
            return
        tf.addfile(ti)
        if ti.isdir():
            try:
                opaque = os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
            except OSError:
                opaque = False
            if opaque:
                tf.addfile(tarfile.TarInfo(f"{arc}/{OPAQUE_MARKER}"))
            for name in sorted(os.listdir(path)):
                child = f"{arc}/{name}"
                if not _init_path(child):
                    add(os.path.join(path, name), child)

    try:
        for name in sorted(os.listdir(upper)):
            if not _init_path(name):
                add(os.path.join(upper, name), name)
    finally:
        tf.close()
