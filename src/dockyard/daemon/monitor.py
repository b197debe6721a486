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

log = logging.getLogger("dockyard.monitor")


class ExitMonitor:
    def __init__(self, on_exit: Callable[[str], None]):
        self._on_exit = on_exit
        self._fds: dict[str, int] = {}

    def watch(self, cid: str, conmon_pid: int) -> None:
        loop = asyncio.get_running_loop()
        self.unwatch(cid)
        try:
            fd = os.pidfd_open(conmon_pid)
        except (ProcessLookupError, OSError):
            loop.call_soon(self._on_exit, cid)   # already gone
            return
        self._fds[cid] = fd
        loop.add_reader(fd, self._fired, cid)

    def _fired(self, cid: str) -> None:
        self.unwatch(cid)
        self._on_exit(cid)

    def unwatch(self, cid: str) -> None:
        fd = self._fds.pop(cid, None)
        if fd is not None:
            try:
                asyncio.get_running_loop().remove_reader(fd)
            except RuntimeError:
                pass
            os.close(fd)

    def close(self) -> None:
        for cid in list(self._fds):
            self.unwatch(cid)
