"""Thin ctypes wrappers for the syscalls the start path needs, so that no
step shells out: mount(2), umount2(2), and pidfds."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import signal
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)

MS_RDONLY = 1
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
EINVAL = 22
ENOENT = 2


def _check(ret: int, what: str) -> None:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def mount(source: str, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                       data.encode() if data else None), f"mount {target}")


_libc.unshare.argtypes = (ctypes.c_int,)
_libc.sethostname.argtypes = (ctypes.c_char_p, ctypes.c_size_t)


def in_thread(fn: Callable[[], T], name: str) -> T:
    """fn() in a thread of its own, waited for: its result, or its exception
    raised here. For namespace work (unshare, setns) that must change one
    thread only, never the daemon's event-loop thread."""
    box: dict = {}

    def run() -> None:
        try:
            box["result"] = fn()
        except BaseException as e:   # re-raised in the caller
            box["error"] = e

    t = threading.Thread(target=run, name=name)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def unshare(flags: int) -> None:
    """unshare(2) for the calling thread (CLONE_NEW* flags)."""
    _check(_libc.unshare(flags), "unshare")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def umount(target: str, detach: bool = True) -> bool:
    """Unmount; False if it was not mounted (EINVAL) or is gone (ENOENT)."""
    ret = _libc.umount2(target.encode(), MNT_DETACH if detach else 0)
    if ret != 0:
        e = ctypes.get_errno()
        if e in (EINVAL, ENOENT):
            return False
        raise OSError(e, f"umount {target}: {os.strerror(e)}")
    return True


def mount_dir(path: str, mode: int = 0o700) -> bool:
    """Make the directory path a private bind mount of itself, unless it is a
    mount point already (a daemon restarted after a crash finds its own);
    True when this call mounted it.

    For directories that hold one mount per container (rootfs overlays,
    network namespace pins). Mounted straight on the data or exec root's
    filesystem, those are all children of the mount that also holds the
    image layers, upper dirs and bind sources, and the kernel walks that
    mount's children on every overlay mount (clone_private_mount, once per
    layer) and every bind clone (copy_tree): a cost per start that grows
    with every container running. Under a mount of their own they are its
    children instead. Private, so they do not propagate to the peers of a
    shared parent (a systemd host's /).

    Where something is mounted under path already but path is no mount (an
    older daemon's containers), nothing is done: a bind would hide those
    mounts from their cleanup."""
    os.makedirs(path, mode=mode, exist_ok=True)
    real = os.path.realpath(path)
    points = mount_points()
    if real in points or any(p.startswith(real + "/") for p in points):
        return False
    mount(path, path, None, MS_BIND)
    try:
        mount("none", path, None, MS_PRIVATE)
    except OSError:
        umount(path)
        raise
    return True


def unmount_dir(path: str) -> bool:
    """Undo mount_dir when nothing is mounted under path any more (at a clean
    shutdown; running containers' mounts keep it, for the next daemon to
    adopt). True when it unmounted. Reads the mount table once."""
    real = os.path.realpath(path)
    points = mount_points()
    if real not in points or any(p.startswith(real + "/") for p in points):
        return False
    return umount(path, detach=False)


_MOUNT_ESCAPE = re.compile(r"\\([0-7]{3})")


def unescape_mount_field(field: str) -> str:
    """A mountinfo path field as the path it names (space, tab, newline and
    backslash are written as octal escapes)."""
    return _MOUNT_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def mount_points() -> list[str]:
    """Every mount point of the daemon's mount namespace, unescaped, in
    mountinfo's order (parents before children); empty if it cannot be read.
    Reads the whole table: for set-up and cleanup, not for a per-start step."""
    try:
        with open("/proc/self/mountinfo") as f:
            return [unescape_mount_field(line.split()[4]) for line in f]
    except OSError:
        return []


_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_AT_NO_AUTOMOUNT = 0x800
_STATX_ATTR_MOUNT_ROOT = 0x2000
_statx = getattr(_libc, "statx", None)
if _statx is not None:
    _statx.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p)


def _mount_root(path: str) -> bool | None:
    """statx's STATX_ATTR_MOUNT_ROOT (Linux 5.8): whether path is the root
    of a mount, bind mounts of the same filesystem included; None when this
    kernel or libc cannot say."""
    if _statx is None:
        return None
    buf = ctypes.create_string_buffer(256)
    if _statx(_AT_FDCWD, path.encode(), _AT_SYMLINK_NOFOLLOW | _AT_NO_AUTOMOUNT, 0, buf) != 0:
        return False if ctypes.get_errno() == ENOENT else None
    attributes = int.from_bytes(buf.raw[8:16], "little")
    mask = int.from_bytes(buf.raw[56:64], "little")
    if not mask & _STATX_ATTR_MOUNT_ROOT:
        return None
    return bool(attributes & _STATX_ATTR_MOUNT_ROOT)


def is_mountpoint(path: str) -> bool:
    """Whether something is mounted on path: one statx, not a read of the
    whole mount table (which grows with every running container)."""
    path = os.path.realpath(path)
    root = _mount_root(path)
    if root is not None:
        return root
    return path in mount_points()


def pidfd_open(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return None


def close_watched(fd: int) -> None:
    """Close fd, first taking it off the running event loop's readers (when
    a loop runs: at shutdown there may be none)."""
    import asyncio
    try:
        asyncio.get_running_loop().remove_reader(fd)
    except RuntimeError:
        pass
    os.close(fd)


def pidfd_kill(pidfd: int, sig: int) -> None:
    signal.pidfd_send_signal(pidfd, sig)


# mount_setattr(2) (Linux 5.12): change a whole mount tree's attributes at once
SYS_MOUNT_SETATTR = 442          # the same number on every architecture (unified table)
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr(path: str, attr_set: int, recursive: bool = True) -> None:
    """Set mount attributes on the mount at `path` (and, recursive, every
    mount below it); OSError (ENOSYS before 5.12) when the kernel refuses."""
    attr = _MountAttr(attr_set, 0, 0, 0)
    ret = _libc.syscall(ctypes.c_long(SYS_MOUNT_SETATTR), ctypes.c_int(-100), ctypes.c_char_p(path.encode()),
                        ctypes.c_uint(AT_RECURSIVE if recursive else 0), ctypes.byref(attr),
                        ctypes.c_size_t(ctypes.sizeof(attr)))
    _check(ret, f"mount_setattr {path}")
