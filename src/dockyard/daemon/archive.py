"""What `docker cp`, `docker export`, `docker diff` and `docker commit` do
to a container's files, given its root (fsview.py) held as an fd
(inroot.Root): every path inside is resolved and used on file descriptors,
never walked again as a host path string (the CVE-2018-15664 race).

- stat: the `X-Docker-Container-Path-Stat` document (mode in Go's
  os.FileMode bits, which the CLI decodes);
- get_tar: a tar of one path, entries named from the path's base name;
- put_tar: a tar extracted under a directory fd with the layer unpacker
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
from ..images.unpack import Extractor, LayerFormatError, clean_name, lstat_at
from ..images.whiteouts import OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX, is_whiteout
from ..inroot import O_PATH, Found, Root, lstat_beneath, readlink_fd, reopen
from .fsview import mount_of

# Go os.FileMode bits
_GO_DIR, _GO_SYMLINK, _GO_DEVICE, _GO_PIPE = 1 << 31, 1 << 27, 1 << 26, 1 << 25
_GO_SOCKET, _GO_SETUID, _GO_SETGID, _GO_CHARDEV, _GO_STICKY = 1 << 24, 1 << 23, 1 << 22, 1 << 21, 1 << 20

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


def _lookup(root: Root, path: str, cname: str, follow_last: bool) -> Found:
    try:
        found = root.lookup(path, follow_last)
    except (FileNotFoundError, NotADirectoryError):
        raise _not_found(path, cname) from None
    except OSError as e:
        raise InvalidParameter(f"{path}: {e.strerror}") from None
    if not found.exists:
        raise _not_found(path, cname)
    return found


def stat_path(root: Root, path: str, cname: str) -> dict:
    """containerStatPath: lstat of the path (its parents' links followed);
    linkTarget is where a symlink leads, as a container path."""
    with _lookup(root, path, cname, follow_last=False) as found:
        st = os.fstat(found.fd)
        link = ""
        if stat.S_ISLNK(st.st_mode):
            try:
                with root.lookup(path, follow_last=True) as target:
                    link = target.cpath
            except OSError:         # leads nowhere (a missing dir, a loop): the link as written
                link = posixpath.normpath(posixpath.join(posixpath.dirname(found.cpath),
                                                         readlink_fd(found.fd)))
    name = posixpath.basename(path.rstrip("/")) or "/"
    return {"name": name, "size": st.st_size, "mode": go_mode(st),
            "mtime": format_ns(st.st_mtime_ns), "linkTarget": link}


def stat_header(doc: dict) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


# ---------------------------------------------------------------- reading
#
# Every walk below holds file descriptors: a child is opened O_PATH|O_NOFOLLOW
# relative to its directory's fd and used through that fd, so a container
# that swaps a directory for a symlink mid-walk gets the symlink archived as a
# symlink, never followed on the host.

_TYPES = ((stat.S_ISREG, tarfile.REGTYPE), (stat.S_ISDIR, tarfile.DIRTYPE), (stat.S_ISLNK, tarfile.SYMTYPE),
          (stat.S_ISFIFO, tarfile.FIFOTYPE), (stat.S_ISCHR, tarfile.CHRTYPE), (stat.S_ISBLK, tarfile.BLKTYPE))


def _tarinfo(tf: tarfile.TarFile, fd: int, st: os.stat_result, arcname: str) -> tarfile.TarInfo | None:
    """TarFile.gettarinfo from an fd and its stat: hard links as links, a
    socket left out (tar has no type for it)."""
    kind = next((t for test, t in _TYPES if test(st.st_mode)), None)
    if kind is None:
        return None
    ti = tarfile.TarInfo(arcname)
    ti.type = kind
    if kind == tarfile.REGTYPE:
        inode = (st.st_ino, st.st_dev)
        if st.st_nlink > 1 and inode in tf.inodes and arcname != tf.inodes[inode]:
            ti.type, ti.linkname = tarfile.LNKTYPE, tf.inodes[inode]
        else:
            ti.size = st.st_size
            if st.st_nlink > 1:
                tf.inodes[inode] = arcname
    elif kind == tarfile.SYMTYPE:
        ti.linkname = readlink_fd(fd)
    elif kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.mtime = st.st_mtime
    ti.uname = ti.gname = ""
    return ti


def _add(tf: tarfile.TarFile, fd: int, arcname: str, skip=None, layer: bool = False) -> None:
    """Add what O_PATH fd `fd` is and, for a directory, everything below it,
    in sorted order. `layer`: overlay whiteouts and opaque dirs as `.wh.` entries."""
    st = os.fstat(fd)
    if layer and is_whiteout(st):
        ti = tarfile.TarInfo(posixpath.join(posixpath.dirname(arcname), WHITEOUT_PREFIX + posixpath.basename(arcname)))
        ti.mtime = int(st.st_mtime)
        tf.addfile(ti)
        return
    ti = _tarinfo(tf, fd, st, arcname)
    if ti is None:
        return
    if ti.type == tarfile.REGTYPE:
        with os.fdopen(reopen(fd, os.O_RDONLY), "rb") as f:
            tf.addfile(ti, f)
        return
    tf.addfile(ti)
    if ti.isdir():
        dfd = reopen(fd, os.O_RDONLY)
        try:
            if layer and _opaque(dfd):
                tf.addfile(tarfile.TarInfo(f"{arcname}/{OPAQUE_MARKER}"))
            _add_children(tf, dfd, arcname, skip, layer)
        finally:
            os.close(dfd)


def _add_children(tf: tarfile.TarFile, dfd: int, arcname: str, skip=None, layer: bool = False) -> None:
    for name in sorted(os.listdir(dfd)):
        child = f"{arcname}/{name}" if arcname else name
        if skip and skip(child):
            continue
        try:
            cfd = os.open(name, O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        except FileNotFoundError:
            continue                    # gone since the listing
        try:
            _add(tf, cfd, child, skip, layer)
        finally:
            os.close(cfd)


def _opaque(dfd: int) -> bool:
    try:
        return os.getxattr(dfd, OPAQUE_XATTR) == b"y"
    except OSError:
        return False


def get_tar(root: Root, path: str, cname: str, out: BinaryIO) -> None:
    """containerArchivePath: the tar of `path`, rebased to its base name."""
    found = _lookup(root, path, cname, follow_last=False)
    base = posixpath.basename(path.rstrip("/")) if not path.endswith("/.") else "."
    if path.rstrip("/") == "":
        base = "."
    # a directory's entries are "<base>", "<base>/…"; for ".../." that is ".", "./…"
    # (moby's TarResourceRebaseOpts with IncludeSourceDir), which the CLI renames
    try:
        tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
        try:
            _add(tf, found.fd, base)
        finally:
            tf.close()
    finally:
        found.close()


def _tar_of_dir(path: str, out: BinaryIO, skip=None, layer: bool = False) -> None:
    """The entries below directory `path` (trusted: the daemon's own) as a tar."""
    dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
        try:
            _add_children(tf, dfd, "", skip, layer)
        finally:
            tf.close()
    finally:
        os.close(dfd)


def export_tar(root: str, out: BinaryIO) -> None:
    _tar_of_dir(root, out)


# ---------------------------------------------------------------- writing

def check_put_target(root: Root, path: str, cname: str, read_only: set[str] = frozenset(),
                     rootfs_read_only: bool = False) -> int:
    """A directory fd to extract into (the caller closes it); Docker's errors
    for a missing or non-directory one, a read-only volume, or a read-only rootfs."""
    with _lookup(root, path, cname, follow_last=True) as found:
        mount = mount_of(found.cpath, list(root.mounts) + list(read_only))
        if mount is not None and mount in read_only:
            raise InvalidParameter("mounted volume is marked read-only")
        if mount is None and rootfs_read_only:
            raise InvalidParameter("container rootfs is marked read-only")
        if not stat.S_ISDIR(os.fstat(found.fd).st_mode):
            raise InvalidParameter("extraction point is not a directory")
        return reopen(found.fd, os.O_RDONLY)


def put_tar(dest: int | str, src: BinaryIO, no_overwrite_dir_non_dir: bool, copy_uid_gid: bool,
            owner: tuple[int, int] | None = None) -> None:
    """Unpack a `docker cp` archive into directory `dest` (an fd, or a path of the daemon's). Entries belong to
    the container's root, or with `copy_uid_gid` (cp -a) keep the archive's
    ids, unless `owner` (the container's Config.User, as moby does for cp -a)
    is given."""
    ex = Extractor(dest)
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


def put_path(root_dir: str, mounts: dict[str, str], path: str, cname: str, read_only: set[str],
             rootfs_read_only: bool, tar_path: str, no_overwrite_dir_non_dir: bool, copy_uid_gid: bool,
             owner: tuple[int, int] | None) -> None:
    """PUT /containers/{id}/archive: the tar file at `tar_path` extracted at
    container path `path`, resolved on fds inside `root_dir` and its mounts."""
    with Root(root_dir, mounts) as root:
        dest = check_put_target(root, path, cname, read_only, rootfs_read_only)
    try:
        with open(tar_path, "rb") as f:
            put_tar(dest, f, no_overwrite_dir_non_dir, copy_uid_gid, owner)
    finally:
        os.close(dest)


def _check_overwrite(ex: Extractor, m: tarfile.TarInfo) -> None:
    parts = clean_name(m.name)
    if not parts:
        return
    try:
        pfd = ex.target.open_dir(parts[:-1], create=False)
    except OSError:
        return
    old = lstat_at(pfd, parts[-1])
    if old is None:
        return
    if stat.S_ISDIR(old.st_mode) and not m.isdir():
        raise InvalidParameter(f'cannot overwrite directory "/{"/".join(parts)}" with non-directory "{m.name}"')
    if not stat.S_ISDIR(old.st_mode) and m.isdir():
        raise InvalidParameter(f'cannot overwrite non-directory "/{"/".join(parts)}" with directory "{m.name}"')


# ---------------------------------------------------------------- changes and commit

def _init_path(rel: str) -> bool:
    return rel in INIT_PATHS or rel.split("/", 1)[0] in INIT_TREES


def _lower_stat(lowers: list[int], rel: str) -> os.stat_result | None:
    for layer in lowers:                    # topmost first
        st = lstat_beneath(layer, rel)
        if st is not None:
            return None if is_whiteout(st) else st
    return None


def changes(upper: str, lowers: list[str]) -> list[dict]:
    """GET /containers/{id}/changes: Kind 0 modified, 1 added, 2 deleted,
    in walk order, each changed entry's parent directory listed as modified.
    Walked on fds: a running container may rename things in its upper dir."""
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

    def walk(dfd: int, rel_dir: str) -> None:
        for name in sorted(os.listdir(dfd)):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if _init_path(rel):
                continue
            st = lstat_at(dfd, name)
            if st is None:
                continue
            if is_whiteout(st):
                record(rel, 2)
                continue
            low = _lower_stat(lower_fds, rel)
            if low is None:
                record(rel, 1)
            elif not (stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(low.st_mode)):
                record(rel, 0)
            elif (st.st_mode, st.st_uid, st.st_gid) != (low.st_mode, low.st_uid, low.st_gid):
                record(rel, 0)          # a copied-up dir is only a change if its metadata is
            if stat.S_ISDIR(st.st_mode):
                try:
                    cfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                except OSError:
                    continue            # swapped or gone since the stat
                try:
                    walk(cfd, rel)
                finally:
                    os.close(cfd)

    lower_fds: list[int] = []
    try:
        for layer in lowers:
            lower_fds.append(os.open(layer, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
        top = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            walk(top, "")
        finally:
            os.close(top)
    finally:
        for fd in lower_fds:
            os.close(fd)
    return out


def layer_tar(upper: str, out: BinaryIO, skip_init: bool = True) -> None:
    """The container's changes as an image layer: the upper dir, overlay
    whiteouts turned back into `.wh.` entries and opaque dirs into
    `.wh..wh..opq`. `skip_init`: leave out the mount points the start path
    made (a container's upper dir; a build step's private overlay has none)."""
    _tar_of_dir(upper, out, skip=_init_path if skip_init else None, layer=True)
