"""Log rotation (max-size / max-file) for the files conmon writes.

conmon appends to `ctr.log` and never blocks on us. When the file reaches
max-size we shift `ctr.log.N-1 … ctr.log.1` up, rename `ctr.log` to
`ctr.log.1`, and ask conmon to reopen its log (ctl fifo message "2 0 0"):
it fsyncs and closes the old file and creates a fresh `ctr.log`. Bytes it
writes between our rename and its reopen land in `ctr.log.1`, in order, so
nothing is lost or reordered; readers follow a file by inode across the
rename (daemon/logs.py).

We learn that a log grew from inotify (IN_MODIFY on the container's
directory, so the watch survives the rename), read at most every few
milliseconds so a fast writer costs the daemon little; the file may exceed
max-size by what conmon writes in that time.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import struct
import time

from ..linux import close_watched
from .logconfig import container_limits
from .lookup import ContainerStore
from .paths import Layout
from .logs import ends_partial, mark_mid_line_head

log = logging.getLogger("dockyard.logrotate")

IN_MODIFY = 0x2
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
REOPEN = 2
_THROTTLE = 0.005
_RESYNC = 0.5          # a tick: containers waiting for conmon's reopen are checked
_FULL_RESYNC = 10      # every this many ticks, the whole table (watches added/removed, sizes)
_REASK = 10.0

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def rotated(path: str, n: int) -> str:
    return path if n == 0 else f"{path}.{n}"


def rotate_files(path: str, max_file: int) -> None:
    """Shift path.N-1 … path.1 up by one (dropping the oldest), path → path.1."""
    if max_file <= 1:
        # keep one file: the current one goes away once conmon reopened
        os.replace(path, rotated(path, 1))
        return
    drop(path, rotated(path, max_file - 1), rotated(path, max_file - 2))
    for n in range(max_file - 2, -1, -1):
        try:
            os.rename(rotated(path, n), rotated(path, n + 1))
        except FileNotFoundError:
            pass


def drop(path: str, old: str, following: str) -> None:
    """Delete the oldest file; if a line ran from it into the next, note that
    the next starts mid-line so readers skip the orphaned rest."""
    if not os.path.exists(old):
        return
    if ends_partial(old):
        mark_mid_line_head(path, following)
    os.unlink(old)


def request_reopen(bundle: str) -> bool:
    try:
        fd = os.open(os.path.join(bundle, "ctl"), os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        os.write(fd, f"{REOPEN} 0 0\n".encode())
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


class LogRotator:
    """One inotify fd for all running containers whose driver rotates."""

    def __init__(self, containers: ContainerStore, layout: Layout) -> None:
        self.containers = containers
        self.layout = layout
        self._fd = -1
        self._wd: dict[int, str] = {}        # watch descriptor → container id
        self._watched: set[str] = set()      # the ids in _wd (a start asks without a scan)
        self._pending: dict[str, float] = {}  # cid → when we asked conmon to reopen
        self._task: asyncio.Task | None = None
        self._throttled = False

    def start(self) -> None:
        if self._task is not None:
            return
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            log.warning("inotify unavailable (%s): log rotation by polling only", os.strerror(ctypes.get_errno()))
        else:
            self._fd = fd
            asyncio.get_running_loop().add_reader(fd, self._on_events)
        self._task = asyncio.ensure_future(self._resync_loop())

    def close(self) -> None:
        if self._task:
            self._task.cancel()
        if self._fd >= 0:
            close_watched(self._fd)
            self._fd = -1

    # -- which containers to watch (also catches rotations interrupted by a crash)
    async def _resync_loop(self) -> None:
        tick = 0
        while True:
            try:
                if tick % _FULL_RESYNC == 0 or self._fd < 0:   # without inotify: poll every tick
                    self._resync()
                else:
                    self._recheck_pending()
            except Exception:
                log.exception("log rotation resync failed")
            tick += 1
            await asyncio.sleep(_RESYNC)

    def _recheck_pending(self) -> None:
        """Between full resyncs only the containers whose reopen we asked for
        (inotify reports growth; a tick over every container would be polling
        that grows with the number running)."""
        for cid in list(self._pending):
            c = self.containers.find(cid)
            if c is None or not c.state.running:
                self._pending.pop(cid, None)
            else:
                self.check(c)

    def _resync(self) -> None:
        want = {}
        for c in self.containers:
            if c.state.running and container_limits(c)[0] > 0:
                want[c.id] = c
        for wd, cid in list(self._wd.items()):
            if cid not in want:
                _libc.inotify_rm_watch(self._fd, wd)
                del self._wd[wd]
                self._watched.discard(cid)
                self._pending.pop(cid, None)
        for cid, c in want.items():
            if cid not in self._watched:
                self._add_watch(c)
            self.check(c)

    def watch(self, c) -> None:
        """A container just started: watch its log from the first byte."""
        if container_limits(c)[0] > 0 and c.id not in self._watched:
            self._add_watch(c)

    def _add_watch(self, c) -> None:
        if self._fd >= 0:
            wd = _libc.inotify_add_watch(self._fd, self.layout.container(c.id).dir.encode(), IN_MODIFY)
            if wd >= 0:
                # the kernel reuses the number of a watch it dropped (a removed dir)
                old = self._wd.get(wd)
                if old is not None and old != c.id:
                    self._watched.discard(old)
                self._wd[wd] = c.id
                self._watched.add(c.id)

    # -- inotify
    def _on_events(self) -> None:
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        cids = set()
        off = 0
        while off + 16 <= len(data):
            wd, _mask, _cookie, ln = struct.unpack_from("iIII", data, off)
            off += 16 + ln
            if wd in self._wd:
                cids.add(self._wd[wd])
        for cid in cids:
            c = self.containers.find(cid)
            if c is not None:
                self.check(c)
        # let events for a busy log coalesce in the kernel for a moment
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._fd)
        loop.call_later(_THROTTLE, self._rearm)

    def _rearm(self) -> None:
        if self._fd >= 0:
            asyncio.get_running_loop().add_reader(self._fd, self._on_events)
            self._on_events()

    # -- the rotation itself
    def check(self, c) -> None:
        max_size, max_file = container_limits(c)
        if max_size <= 0 or not c.state.running:
            return
        paths = self.layout.container(c.id)
        path = paths.log_path
        now = time.monotonic()
        try:
            st = os.stat(path)
        except FileNotFoundError:
            # renamed, conmon has not reopened yet. Ask once: every reopen replaces
            # ctr.log with a fresh file, so a second one would drop what it wrote.
            # Unless nobody asked (a crash between rename and request) or it was lost.
            if now - self._pending.get(c.id, -1e9) > _REASK:
                self._pending[c.id] = now
                request_reopen(paths.bundle)
            return
        if self._pending.pop(c.id, None) is not None and max_file <= 1:
            try:
                drop(path, rotated(path, 1), path)
            except OSError:
                pass
        if st.st_size < max_size:
            return
        try:   # conmon must be there to reopen: never rotate under a conmon that has exited
            ctl = os.open(os.path.join(paths.bundle, "ctl"), os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return
        try:
            rotate_files(path, max_file)
            self._pending[c.id] = now
            os.write(ctl, f"{REOPEN} 0 0\n".encode())
        except OSError as e:
            log.warning("rotating %s failed: %s", path, e)
        finally:
            os.close(ctl)
