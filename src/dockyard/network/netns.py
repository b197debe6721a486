"""Network namespaces as bind-mounted files, made with raw syscalls.

A network namespace belongs to a thread, not a process, so each operation
runs in a short-lived thread: the thread enters (or creates) the namespace,
does its work and exits, and the daemon's other threads never move. This
avoids both a subprocess per container and pyroute2's forking NetNS helper.
"""
from __future__ import annotations

import ctypes
import errno
import os
import threading
from typing import Callable, TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MNT_DETACH = 0x2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                        ctypes.c_ulong, ctypes.c_void_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
_libc.unshare.argtypes = (ctypes.c_int,)
_libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)


def _check(rc: int, what: str, path: str | None = None) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)


def call_in_thread(fn: Callable[[], T]) -> T:
    """Run fn in a fresh thread and return its result or raise its exception."""
    box: dict = {}

    def run() -> None:
        try:
            box["result"] = fn()
        except BaseException as e:   # re-raised in the caller
            box["error"] = e

    t = threading.Thread(target=run, name="dockyard-netns")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def create(path: str, then: Callable[[], T] | None = None) -> T | None:
    """Make a new, empty network namespace pinned by a bind mount at path.

    `then` runs in the same thread right after, already inside the new
    namespace, so a caller can plumb it without a second thread and setns.
    If `then` fails the namespace stays pinned: the caller's rollback owns it.
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))
    pinned = False

    def unshare_pin_then():
        nonlocal pinned
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        _check(_libc.mount(b"/proc/thread-self/ns/net", path.encode(), None, MS_BIND, None),
               "bind-mount netns", path)
        pinned = True
        return then() if then is not None else None

    try:
        return call_in_thread(unshare_pin_then)
    except BaseException:
        if not pinned:
            os.unlink(path)
        raise


def remove(path: str) -> None:
    """Unpin and delete a namespace file; missing or unmounted files are fine."""
    if _libc.umount2(path.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):   # EINVAL: not a mount point
            raise OSError(err, f"umount netns: {os.strerror(err)}", path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def run_in(path: str, fn: Callable[[], T]) -> T:
    """Run fn inside the namespace at path, in a thread that dies afterwards.

    Sockets fn opens (e.g. an IPRoute) stay bound to that namespace.
    """
    def enter_and_run() -> T:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _check(_libc.setns(fd, CLONE_NEWNET), "setns(CLONE_NEWNET)", path)
        finally:
            os.close(fd)
        return fn()

    return call_in_thread(enter_and_run)
