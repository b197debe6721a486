"""Pause and unpause: the runtime freezes the container's cgroup (the
freezer on cgroup v1, cgroup.freeze on v2). Healthchecks skip a frozen
container; stop, kill -9 and rm -f thaw it first (daemon.py, with the
same runtime verb, resume)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..errors import Conflict, SystemError_
from ..runtime import conmon
from .container import PAUSED, RESTARTING, RUNNING

if TYPE_CHECKING:
    from ..runtime.runtimes import Runtimes
    from .container import Container


class _Daemon(Protocol):
    runtimes: Runtimes
    def save(self, c: Container) -> None: ...
    def event(self, c: Container, action: str, **extra) -> None: ...


async def pause(d: _Daemon, c) -> None:
    async with c.lock:
        st = c.state.status
        if st == PAUSED:
            raise Conflict(f"Container {c.id} is already paused")
        if st == RESTARTING:
            raise Conflict(f"Container {c.id} is restarting, wait until the container is running")
        if st != RUNNING:
            raise Conflict(f"Container {c.id} is not running")
        try:
            await d.runtimes.for_name(c.runtime).pause(c.id)
        except SystemError_:
            # the process is gone and conmon has yet to report it (its exit is
            # recorded when conmon goes): answer as once it is recorded
            if not conmon.pid_alive(c.state.pid):
                raise Conflict(f"Container {c.id} is not running") from None
            raise
        c.state.transition(PAUSED)
        d.save(c)
    d.event(c, "pause")


async def unpause(d: _Daemon, c) -> None:
    async with c.lock:
        if c.state.status != PAUSED:
            # moby's words; moby answers 500 (a plain error), a 409 here: the client asked for a
            # state change the container is not in, nothing failed (README: differences)
            raise Conflict(f"Container {c.id} is not paused")
        await d.runtimes.for_name(c.runtime).resume(c.id)
        c.state.transition(RUNNING)
        d.save(c)
    d.event(c, "unpause")
