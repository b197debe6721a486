"""Unpack one layer tarball into a directory, safely.

A layer comes from outside (an import, a `docker load` file), so nothing in
it may reach outside the target directory:

- names are cleaned like Docker does (`filepath.Clean`, then joined under
  the target): absolute names land inside the target, a name that climbs
  out with `..` is rejected, and so is a hard link that does;
- parent directories are resolved one component at a time from an open
  directory fd with O_NOFOLLOW, and a symlink met on the way is followed
  *inside* the target as if it were `/` (Docker does the same in a chroot),
  so a symlink pointing out and a file written "through" it stays inside;
- the final component is never followed: an existing entry is replaced,
  and files are opened O_CREAT|O_EXCL|O_NOFOLLOW.

Metadata is kept: numeric owner, mode (set after chown, which clears
setuid), xattrs from PAX `SCHILY.xattr.*` (after chown, which clears file
capabilities), times (directories last, since filling them bumps mtime).
Whiteouts are turned into overlay whiteouts (see whiteouts.py).

The diff id (sha256 of the uncompressed tar) is computed while reading.
"""
from __future__ import annotations

import bz2
import errno
import gzip
import hashlib
import logging
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import InvalidParameter, SystemError_
from .whiteouts import OPAQUE_MARKER, WHITEOUT_META_PREFIX, Whiteout, classify, make_opaque, make_whiteout

log = logging.getLogger("dockyard.images")

_COPY_CHUNK = 1 << 20
_MAX_SYMLINK_HOPS = 40
_XATTR_PREFIX = "SCHILY.xattr."
# overlayfs reads these from lower dirs; only our whiteout conversion may set them
_RESERVED_XATTR = "trusted.overlay."
# host trouble rather than a bad archive
_SYSTEM_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.ENOMEM, errno.EMFILE}


class LayerFormatError(InvalidParameter):
    """The archive is not a valid (or not a safe) layer."""


@dataclass
class UnpackResult:
    diff_id: str     # "sha256:<hex>" of the uncompressed tar stream
    size: int        # bytes of regular file content
    tar_size: int = 0   # bytes of the uncompressed tar stream


# ---------------------------------------------------------------- streams

class Prefixed:
    """A reader that first replays bytes already peeked at."""

    def __init__(self, head: bytes, f: BinaryIO):
        self._head = head
        self._f = f

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                data, self._head = self._head + self._f.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            if len(data) < n:
                data += self._f.read(n - len(data))
            return data
        return self._f.read(n)


class _Hashing:
    """Hashes (and counts) everything read through it."""

    def __init__(self, f, tee: BinaryIO | None = None):
        self._f = f
        self.sha = hashlib.sha256()
        self._tee = tee
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self.sha.update(data)
        self.count += len(data)
        if self._tee is not None:
            self._tee.write(data)
        return data

    def drain(self) -> None:
        while self.read(_COPY_CHUNK):
            pass


def decompressed(f: BinaryIO):
    """Wrap `f` so reads return the plain tar, whatever compression it has
    (gzip, bzip2, xz, or none: what `docker import` accepts, minus zstd)."""
    head = f.read(6)
    src = Prefixed(head, f)
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=src, mode="rb")
    if head.startswith(b"BZh"):
        return bz2.BZ2File(src)
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(src)
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        raise LayerFormatError("zstd-compressed layers are not supported yet")
    return src


# ---------------------------------------------------------------- names

def clean_name(name: str) -> list[str]:
    """Archive name -> path components under the target, as Docker sees it:
    Clean, absolute means relative to the target, climbing out is an error.
    [] is the target itself."""
    p = posixpath.normpath(name)
    if p.startswith("/"):
        p = p.lstrip("/") or "."
    if p == ".." or p.startswith("../"):
        raise LayerFormatError(f"invalid layer archive: {name!r} points outside the layer")
    return [] if p == "." else p.split("/")


# ---------------------------------------------------------------- extraction

def open_dir_beneath(top: int, parts: list[str], create: bool,
                     owner: tuple[int, int] | None = None) -> int:
    """An fd (O_RDONLY, the caller closes it) for the directory `parts`
    below directory fd `top`, resolved one component at a time with every
    symlink followed *inside* `top` (an absolute target starts again at
    `top`, `..` never climbs above it). Missing directories are made (0755,
    like Docker) if `create`, and given to `owner` (uid, gid) if set."""
    todo = list(parts)
    fds = [os.dup(top)]
    hops = 0
    try:
        while todo:
            c = todo.pop(0)
            if c in ("", "."):
                continue
            if c == "..":
                if len(fds) > 1:        # `..` at the top stays there
                    os.close(fds.pop())
                continue
            cur = fds[-1]
            try:
                st = os.stat(c, dir_fd=cur, follow_symlinks=False)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(c, 0o755, dir_fd=cur)
                if owner is not None:
                    os.chown(c, owner[0], owner[1], dir_fd=cur, follow_symlinks=False)
                st = os.stat(c, dir_fd=cur, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > _MAX_SYMLINK_HOPS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links", "/".join(parts))
                target = os.readlink(c, dir_fd=cur)
                if target.startswith("/"):
                    for fd in fds[1:]:
                        os.close(fd)
                    del fds[1:]
                todo[:0] = target.split("/")
                continue
            fds.append(os.open(c, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                               dir_fd=cur))
        return fds.pop()
    finally:
        for fd in fds:
            os.close(fd)


class _Target:
    """The directory being filled, with in-scope path resolution. Given as a
    path (a directory of the daemon's) or as an fd, which is duplicated (a
    directory inside a container, resolved on fds by the caller)."""

    def __init__(self, dest: str | int):
        if isinstance(dest, int):
            self.fd = os.dup(dest)
        else:
            self.fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._cached: tuple[tuple[str, ...], int] | None = None

    def close(self) -> None:
        self._forget()
        os.close(self.fd)

    def _forget(self) -> None:
        if self._cached:
            os.close(self._cached[1])
            self._cached = None

    def open_dir(self, parts: list[str], create: bool) -> int:
        """An fd for the directory `parts`, symlinks resolved inside the
        target; missing directories are made (0755, like Docker) if `create`.
        The fd is borrowed: valid until the next call; do not close it."""
        key = tuple(parts)
        if self._cached and self._cached[0] == key:
            return self._cached[1]
        fd = self.open_dir_owned(parts, create)
        self._forget()
        self._cached = (key, fd)
        return fd

    def open_dir_owned(self, parts: list[str], create: bool) -> int:
        """Like open_dir, but the caller owns (and closes) the fd."""
        return open_dir_beneath(self.fd, parts, create)

    def remove(self, dir_fd: int, name: str, st: os.stat_result) -> None:
        """Remove `name` from `dir_fd`. Drops the cached dir fd afterwards
        (it may be `dir_fd`, or lie below what went away): callers get a
        fresh one from open_dir."""
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=dir_fd)
        else:
            os.unlink(name, dir_fd=dir_fd)
        self._forget()


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _times_ns(m: tarfile.TarInfo) -> tuple[int, int]:
    mtime = int(m.mtime * 1_000_000_000)
    atime = m.pax_headers.get("atime")
    try:
        atime_ns = int(float(atime) * 1_000_000_000) if atime else mtime
    except ValueError:
        atime_ns = mtime
    return atime_ns, mtime


def _xattrs(m: tarfile.TarInfo) -> list[tuple[str, bytes]]:
    out = []
    for key, value in m.pax_headers.items():
        if key.startswith(_XATTR_PREFIX):
            name = key[len(_XATTR_PREFIX):]
            if name.startswith(_RESERVED_XATTR):
                continue
            out.append((name, value.encode("utf-8", "surrogateescape")))
    return out


def _set_xattrs(target, m: tarfile.TarInfo) -> None:
    """`target`: an fd, or a path that is never a symlink we did not make."""
    for name, value in _xattrs(m):
        try:
            if isinstance(target, str):
                os.setxattr(target, name, value, follow_symlinks=False)
            else:
                os.setxattr(target, name, value)
        except OSError as e:
            if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
                log.debug("xattr %s on %s not kept: %s", name, m.name, e)   # best effort, as Docker
                continue
            raise


class Extractor:
    """Entries of a tar stream, one `entry` at a time, written under `dest`
    (a path, or a directory fd) and never outside it; `finish` sets the
    directories' times."""

    def __init__(self, dest: str | int, whiteouts: bool = True):
        self.target = _Target(dest)
        self.whiteouts = whiteouts      # False: `.wh.` names are plain files (not a layer: a build context, ADD)
        self.size = 0
        self.dir_times: list[tuple[list[str], tuple[int, int]]] = []

    def close(self) -> None:
        self.target.close()

    def entry(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        """Write one entry. An entry the target cannot take as the archive
        says (a file where the archive puts a directory, a name too long...)
        is a bad archive (LayerFormatError, a 400); a host failure (disk
        full, read-only, I/O) stays an OSError for the caller to report."""
        try:
            self._entry(tf, m)
        except OSError as e:
            if e.errno is None or e.errno in _SYSTEM_ERRNOS:
                raise
            raise LayerFormatError(f"invalid layer archive: {m.name}: {e.strerror}") from None

    def _entry(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        parts = clean_name(m.name)
        if not parts:                          # "./": metadata of the layer root
            if m.isdir():
                self._dir_meta(self.target.fd, m, [])
            return
        if self.whiteouts and parts[0].startswith(WHITEOUT_META_PREFIX) and parts != [OPAQUE_MARKER]:
            return                              # inside aufs bookkeeping dirs (.wh..wh.plnk/...)
        parent, base = parts[:-1], parts[-1]
        wh = classify(base) if self.whiteouts else None
        if wh is not None:
            self._whiteout(parent, wh, m)
            return
        pfd = self.target.open_dir(parent, create=True)
        old = lstat_at(pfd, base)
        if old is not None and not (m.isdir() and stat.S_ISDIR(old.st_mode)):
            if m.islnk() and clean_name(m.linkname) == parts:
                return                          # a hard link to itself: nothing to do
            self.target.remove(pfd, base, old)
            pfd = self.target.open_dir(parent, create=True)
            old = None

        if m.isdir():
            if old is None:
                os.mkdir(base, 0o700, dir_fd=pfd)
            fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
            try:
                self._dir_meta(fd, m, parts)
            finally:
                os.close(fd)
        elif m.isreg():
            self._file(tf, m, pfd, base)
        elif m.issym():
            os.symlink(m.linkname, base, dir_fd=pfd)
            os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
            os.utime(base, ns=_times_ns(m), dir_fd=pfd, follow_symlinks=False)
            self.size += len(os.fsencode(m.linkname))   # a symlink's size is its target's length, as moby counts it
        elif m.islnk():
            self._hardlink(m, pfd, base)
        elif m.ischr() or m.isblk() or m.isfifo():
            self._node(m, pfd, base)
        else:
            log.debug("skipping tar entry %s of type %r", m.name, m.type)

    def _dir_meta(self, fd: int, m: tarfile.TarInfo, parts: list[str]) -> None:
        os.chown(fd, m.uid, m.gid)
        os.chmod(fd, m.mode & 0o7777)
        _set_xattrs(fd, m)
        self.dir_times.append((parts, _times_ns(m)))

    def _file(self, tf: tarfile.TarFile, m: tarfile.TarInfo, pfd: int, base: str) -> None:
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=pfd)
        try:
            src = tf.extractfile(m)
            with os.fdopen(os.dup(fd), "wb", closefd=True) as out:
                shutil.copyfileobj(src, out, _COPY_CHUNK)
            os.chown(fd, m.uid, m.gid)
            os.chmod(fd, m.mode & 0o7777)
            _set_xattrs(fd, m)
            os.utime(fd, ns=_times_ns(m))
        finally:
            os.close(fd)
        self.size += m.size

    def _hardlink(self, m: tarfile.TarInfo, pfd: int, base: str) -> None:
        lparts = clean_name(m.linkname)
        if not lparts:
            raise LayerFormatError(f"invalid layer archive: hard link {m.name!r} to the layer root")
        # resolve the source's dir with its own walk: open_dir's fd is borrowed
        try:
            src_dir = self.target.open_dir_owned(lparts[:-1], create=False)
        except (FileNotFoundError, NotADirectoryError):
            raise self._bad_link(m, "no such file") from None
        try:
            src = lstat_at(src_dir, lparts[-1])
            if src is None:         # a link to a file the archive (and the target) does not have
                raise self._bad_link(m, "no such file")
            if stat.S_ISDIR(src.st_mode):
                raise self._bad_link(m, "a directory")
            os.link(lparts[-1], base, src_dir_fd=src_dir, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(src_dir)

    @staticmethod
    def _bad_link(m: tarfile.TarInfo, what: str) -> LayerFormatError:
        return LayerFormatError(f"invalid layer archive: hard link {m.name!r} to {m.linkname!r}: {what}")

    def _node(self, m: tarfile.TarInfo, pfd: int, base: str) -> None:
        if m.isfifo():
            os.mkfifo(base, 0o600, dir_fd=pfd)
        else:
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(base, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
        os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
        # chmod through an fd of what we just made: the name may have been
        # swapped for a symlink meanwhile (a container's directory)
        fd = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        try:
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                raise OSError(errno.ELOOP, "replaced while being made", base)
            os.chmod(f"/proc/self/fd/{fd}", m.mode & 0o7777)
        finally:
            os.close(fd)
        _set_xattrs(f"/proc/self/fd/{pfd}/{base}", m)
        os.utime(base, ns=_times_ns(m), dir_fd=pfd, follow_symlinks=False)

    def _whiteout(self, parent: list[str], wh: tuple[Whiteout, str | None], m: tarfile.TarInfo) -> None:
        kind, name = wh
        if kind is Whiteout.META:
            return
        pfd = self.target.open_dir(parent, create=True)
        if kind is Whiteout.OPAQUE:
            make_opaque(pfd)
            return
        old = lstat_at(pfd, name)
        if old is not None:
            self.target.remove(pfd, name, old)
            pfd = self.target.open_dir(parent, create=True)
        make_whiteout(pfd, name, m.uid, m.gid)

    def finish(self) -> None:
        """Directory times last: creating entries inside bumped them."""
        for parts, times in self.dir_times:
            try:
                fd = self.target.open_dir_owned(parts, create=False)
            except OSError:
                continue            # replaced later in the archive
            try:
                os.utime(fd, ns=times)
            finally:
                os.close(fd)


def unpack_layer(src: BinaryIO, dest: str, tee: BinaryIO | None = None) -> UnpackResult:
    """Unpack the (possibly compressed) layer tar `src` into the existing,
    empty directory `dest`; the plain tar is also written to `tee` if given
    (kept for save and push, whose digests need the exact bytes). Raises
    LayerFormatError for a bad or unsafe archive, SystemError_ when the host
    fails (disk full...)."""
    plain = _Hashing(decompressed(src), tee)
    ex = Extractor(dest)
    current = "<archive>"
    try:
        with tarfile.open(fileobj=plain, mode="r|", encoding="utf-8", errors="surrogateescape") as tf:
            for m in tf:
                current = m.name
                ex.entry(tf, m)
        plain.drain()           # end-of-archive blocks and padding are part of the diff id
        ex.finish()
    except LayerFormatError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, ValueError) as e:
        raise LayerFormatError(f"invalid layer archive: {e}") from None
    except OSError as e:
        if e.errno in _SYSTEM_ERRNOS:
            raise SystemError_(f"unpacking layer: {e}") from None
        if e.errno is None:     # gzip/bz2 data errors come as bare OSErrors
            raise LayerFormatError(f"invalid layer archive: {e}") from None
        raise LayerFormatError(f"invalid layer archive: {current}: {e.strerror}") from None
    finally:
        ex.close()
    return UnpackResult("sha256:" + plain.sha.hexdigest(), ex.size, plain.count)
