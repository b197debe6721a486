"""Learning that a container exited, without polling.

conmon writes the exit file and exits right after the container does. A
pidfd on the conmon process becomes readable at that moment; the event
loop wakes us. pidfds work for processes that are not our children, so
this also covers containers re-adopted after a daemon restart."""
from __future__ import annotations

import asyncio
import logging
import os
from typing import Callable

from ..linux import close_watched

log = logging.getLogger("dockyard.monitor")


class ExitMonitor:
    """Calls on_exit(cid, conmon_pid) once the conmon watched for cid is gone:
    the pid tells a handler which run of the container it is about (a verb
    may have recorded that exit already and started the container again)."""

    def __init__(self, on_exit: Callable[[str, int], None]):
        self._on_exit = on_exit
        self._fds: dict[str, tuple[int, int]] = {}

    def watch(self, cid: str, conmon_pid: int) -> None:
        loop = asyncio.get_running_loop()
        self.unwatch(cid)
        try:
            fd = os.pidfd_open(conmon_pid)
        except (ProcessLookupError, OSError):
            loop.call_soon(self._on_exit, cid, conmon_pid)   # already gone
            return
        self._fds[cid] = (fd, conmon_pid)
        loop.add_reader(fd, self._fired, cid, conmon_pid)

    def _fired(self, cid: str, conmon_pid: int) -> None:
        self.unwatch(cid)
        self._on_exit(cid, conmon_pid)

    def unwatch(self, cid: str) -> None:
        fd, _pid = self._fds.pop(cid, (None, 0))
        if fd is not None:
            close_watched(fd)

    def close(self) -> None:
        for cid in list(self._fds):
            self.unwatch(cid)
