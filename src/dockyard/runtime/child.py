"""A child process of the daemon, waited for through its pidfd on the event
loop: the runtime of an attached exec (runtimes.Runtime.exec_piped) and the
first conmon of a start or exec (conmon._spawn). asyncio's subprocess support
on Python 3.11 (ThreadedChildWatcher) starts a thread per child to wait for
it, and builds a transport these children do not need."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess

from ..linux import close_watched


class Child:
    """A process we spawned, waited for through its pidfd: no watcher thread,
    the child's exit read by the event loop itself. Popen raises as it does
    when the program cannot be run."""

    def __init__(self, popen: subprocess.Popen):
        self._popen = popen
        self.pid = popen.pid
        self.returncode: int | None = None
        self._fd = os.pidfd_open(popen.pid)
        self._exited: asyncio.Future | None = None

    def _watch(self) -> asyncio.Future:
        """A future done once the child has exited and is reaped (one reader
        on the pidfd, however many wait)."""
        if self._exited is None:
            loop = asyncio.get_running_loop()
            self._exited = loop.create_future()
            if self.returncode is not None:
                self._exited.set_result(self.returncode)
            else:
                loop.add_reader(self._fd, self._reap)
        return self._exited

    def _reap(self) -> None:
        if self._fd >= 0:
            close_watched(self._fd)
            self._fd = -1
        self.returncode = self._popen.wait()
        if self._exited is not None and not self._exited.done():
            self._exited.set_result(self.returncode)

    async def wait(self) -> int:
        """Its exit status (as asyncio's: -N when signal N ended it)."""
        if self.returncode is not None:
            return self.returncode
        return await asyncio.shield(self._watch())

    def kill(self) -> None:
        """SIGKILL it; it is reaped when it has gone (no zombie left)."""
        if self.returncode is not None:
            return
        try:
            signal.pidfd_send_signal(self._fd, signal.SIGKILL)
        except OSError:
            pass
        try:
            self._watch()
        except RuntimeError:     # no event loop: wait here
            self._reap()
