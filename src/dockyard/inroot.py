"""Paths inside a container's root, resolved on file descriptors.

A container is hostile: while the daemon copies into or out of it, a process
in it can swap a directory for a symlink to `/` at any moment
(`renameat2(RENAME_EXCHANGE)`, the CVE-2018-15664 race). So no host-side
operation on container content may turn a container path into a host path
string and walk that string again: every component is opened relative to the
file descriptor of the one before it, a symlink is read from its own fd and
followed *inside* the root (an absolute target starts again at the root, `..`
never climbs above it), and what is finally reached is used through its fd.

Two ways to do that, with the same result:
- `openat2(2)` with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS` (Linux >= 5.6):
  the kernel resolves the whole path inside the root in one call. Used when
  the container has no bind mounts or volumes to switch into.
- a walk one component at a time, each opened `O_PATH | O_NOFOLLOW` relative
  to the previous fd: used where openat2 is missing, and when the path may
  cross into one of the container's mounts. Those mounts exist only in the
  container's mount namespace; in the daemon's view the rootfs has an empty
  mount point there, so the walk continues from the mount's host source when
  it reaches a mount's destination (and `..` at the top of a mount goes back
  to the mount point's parent in the rootfs, as in the container).

Where a final object is opened for reading or writing, it is reopened from its
`O_PATH` fd (`/proc/self/fd/N`, the same inode), never by name.
"""
from __future__ import annotations

import ctypes
import errno
import os
import stat
from dataclasses import dataclass

_MAX_HOPS = 40

O_PATH = getattr(os, "O_PATH", 0o10000000)
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
_SYS_OPENAT2 = 437          # the same number on every architecture (the unified syscall table)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_openat2_ok: bool | None = None      # None: not tried yet


def openat2(dir_fd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2); OSError(ENOSYS) where the kernel (or a seccomp filter) lacks it."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    fd = _libc.syscall(_SYS_OPENAT2, ctypes.c_int(dir_fd), os.fsencode(path),
                       ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)
    return fd


def has_openat2() -> bool:
    global _openat2_ok
    if _openat2_ok is None:
        try:
            os.close(openat2(-100, "/", O_PATH, RESOLVE_IN_ROOT))      # AT_FDCWD
            _openat2_ok = True
        except OSError:
            _openat2_ok = False
    return _openat2_ok


def components(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def _open_path(dir_fd: int, name: str) -> int:
    """One component, never followed: it cannot leave `dir_fd`."""
    return os.open(name, O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)


_libc.readlinkat.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t)
_libc.readlinkat.restype = ctypes.c_ssize_t


def _close(fd: int) -> None:
    if fd >= 0:
        os.close(fd)


def readlink_fd(fd: int) -> str:
    """The target of the symlink that `fd` (O_PATH|O_NOFOLLOW) is: readlinkat(fd, "")."""
    buf = ctypes.create_string_buffer(4096)
    n = _libc.readlinkat(fd, b"", buf, 4096)
    if n < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return os.fsdecode(buf.raw[:n])


def _fd_path(fd: int) -> str:
    """Where the kernel says `fd` is now (only ever used as information)."""
    return os.readlink(f"/proc/self/fd/{fd}")


def reopen(fd: int, flags: int) -> int:
    """A readable (or writable) fd for the object an O_PATH fd refers to: the
    same inode, never looked up by name again."""
    st = os.fstat(fd)
    if stat.S_ISDIR(st.st_mode):
        return os.open(".", flags | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "not a regular file or directory")
    return os.open(f"/proc/self/fd/{fd}", flags | os.O_CLOEXEC)


@dataclass
class Found:
    """What a container path led to: `fd` is an O_PATH fd of the object (the
    symlink itself when the last component was not followed), or -1 when the
    last component does not exist; `name` is its last component, `cpath` the
    container path reached. Close it (or use it as a context manager)."""
    fd: int
    name: str
    cpath: str

    @property
    def exists(self) -> bool:
        return self.fd >= 0

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
        self.fd = -1

    def __enter__(self) -> "Found":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Root:
    """A container's root directory, held as an fd, with the container's
    bind mounts and volumes (container path -> host source directory or
    file) that the daemon's view of the rootfs does not show."""

    def __init__(self, path: str, mounts: dict[str, str] | None = None):
        self.fd = os.open(path, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.mounts = {"/" + "/".join(components(k)): v for k, v in (mounts or {}).items()}

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "Root":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ resolving

    def lookup(self, path: str, follow_last: bool = True) -> Found:
        """Resolve container path `path`. A missing last component is not an
        error (Found.exists is False); a missing or non-directory parent is
        FileNotFoundError / NotADirectoryError."""
        if not self.mounts and has_openat2():
            return self._lookup_openat2(path, follow_last)
        return self._walk(path, follow_last)

    def _lookup_openat2(self, path: str, follow_last: bool) -> Found:
        parts = components(path)
        if not parts or parts[-1] == "..":
            return self._walk(path, follow_last)
        how = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
        if follow_last:
            try:
                fd = openat2(self.fd, "/".join(parts), O_PATH, how)
            except FileNotFoundError:
                return self._walk(path, follow_last)     # which component is missing decides
            return Found(fd, parts[-1], self._cpath(fd))
        parent = openat2(self.fd, "/".join(parts[:-1]) or ".", O_PATH | os.O_DIRECTORY, how)
        try:
            try:
                fd = _open_path(parent, parts[-1])
            except FileNotFoundError:
                fd = -1
            return Found(fd, parts[-1], self._cpath(parent, parts[-1]))
        finally:
            os.close(parent)

    def _cpath(self, fd: int, name: str | None = None) -> str:
        rel = os.path.relpath(_fd_path(fd), _fd_path(self.fd))
        parts = [] if rel == "." else components(rel)
        return "/" + "/".join(parts + ([name] if name else []))

    def _walk(self, path: str, follow_last: bool) -> Found:
        todo = components(path)
        stack = [os.dup(self.fd)]            # one fd per container component reached
        names: list[str] = []
        hops = 0
        try:
            while todo:
                part = todo.pop(0)
                if part == "..":
                    if len(stack) > 1:
                        _close(stack.pop())
                        names.pop()
                    continue
                last = not todo
                cpath = "/" + "/".join(names + [part])
                src = self.mounts.get(cpath)
                try:
                    if stack[-1] < 0:        # inside a mount point the rootfs lacks
                        raise FileNotFoundError(errno.ENOENT, "no such file or directory", path)
                    fd = _open_path(stack[-1], part)
                except FileNotFoundError:
                    fd = -1
                    if src is None:
                        if last:
                            return Found(-1, part, cpath)
                        if not any(m.startswith(cpath + "/") for m in self.mounts):
                            raise
                        stack.append(-1)     # a mount below: the runtime makes this dir
                        names.append(part)
                        continue
                st = os.fstat(fd) if fd >= 0 else None
                if st is not None and stat.S_ISLNK(st.st_mode) and (not last or follow_last):
                    hops += 1
                    if hops > _MAX_HOPS:
                        os.close(fd)
                        raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
                    try:
                        target = readlink_fd(fd)
                    finally:
                        os.close(fd)
                    if target.startswith("/"):
                        for x in stack[1:]:
                            _close(x)
                        del stack[1:]
                        names.clear()
                    todo[:0] = components(target)
                    continue
                if src is not None:          # a mount: on in its host source
                    if fd >= 0:
                        os.close(fd)
                    fd = os.open(src, O_PATH | os.O_CLOEXEC)
                    st = os.fstat(fd)
                if last:
                    return Found(fd, part, cpath)
                if not stat.S_ISDIR(st.st_mode):
                    os.close(fd)
                    raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
                stack.append(fd)
                names.append(part)
            # the path was the root itself, or ended in ".."
            top = stack.pop()       # -1: a mount point the rootfs lacks, "missing"
            return Found(top, names[-1] if names else ".", "/" + "/".join(names))
        finally:
            for x in stack:
                _close(x)

    # ------------------------------------------------------------ helpers

    def open_followed(self, path: str) -> int:
        """An O_PATH fd of what `path` leads to, symlinks followed inside the
        root; FileNotFoundError when it does not exist."""
        parts = components(path)
        if parts and ".." not in parts and not self.mounts and has_openat2():
            return openat2(self.fd, "/".join(parts), O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
        f = self.lookup(path, follow_last=True)
        if not f.exists:
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", path)
        return f.fd

    def read_file(self, path: str, limit: int = 1 << 20) -> bytes:
        """At most `limit` bytes of regular file `path` (followed inside the root)."""
        pfd = self.open_followed(path)
        try:
            fd = reopen(pfd, os.O_RDONLY)
        finally:
            os.close(pfd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "not a regular file", path)
            chunks, left = [], limit
            while left > 0:
                b = os.read(fd, min(left, 1 << 16))
                if not b:
                    break
                chunks.append(b)
                left -= len(b)
            return b"".join(chunks)
        finally:
            os.close(fd)


def read_file(root: str, path: str, limit: int = 1 << 20) -> bytes:
    """`Root(root).read_file(path)`: a file of a container's (or an image's)
    root, symlinks followed inside that root."""
    with Root(root) as r:
        return r.read_file(path, limit)


def lstat_beneath(dir_fd: int, rel: str) -> os.stat_result | None:
    """lstat of `rel` under `dir_fd`, no component followed (a symlink on the
    way means the path is not there, as for a directory an upper layer
    shadows); None when missing."""
    parts = components(rel)
    if not parts:
        return os.fstat(dir_fd)
    fds: list[int] = []
    try:
        cur = dir_fd
        for part in parts[:-1]:
            if part == "..":
                return None
            try:
                fd = os.open(part, O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=cur)
            except (FileNotFoundError, NotADirectoryError):
                return None
            except OSError as e:
                if e.errno == errno.ELOOP:
                    return None
                raise
            fds.append(fd)
            cur = fd
        try:
            return os.stat(parts[-1], dir_fd=cur, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
    finally:
        for fd in fds:
            os.close(fd)
