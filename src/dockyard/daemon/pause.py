"""Pause and unpause: the runtime freezes the container's cgroup (the
freezer on cgroup v1, cgroup.freeze on v2). Healthchecks skip a frozen
container; stop, kill -9 and rm -f thaw it first (daemon.py)."""
from __future__ import annotations

from ..errors import Conflict, SystemError_
from .container import PAUSED, RESTARTING, RUNNING


def _runtime(d, c):
    return d.runtimes.available.get(c.runtime) or d.runtimes.get(None)


async def pause(d, c) -> None:
    async with c.lock:
        st = c.state.status
        if st == PAUSED:
            raise Conflict(f"Container {c.id} is already paused")
        if st == RESTARTING:
            raise Conflict(f"Container {c.id} is restarting, wait until the container is running")
        if st != RUNNING:
            raise Conflict(f"Container {c.id} is not running")
        code, out = await _runtime(d, c).run("pause", c.id, check=False)
        if code != 0:
            raise SystemError_(f"Cannot pause container {c.id}: {out}")
        c.state.transition(PAUSED)
        d.save(c)
    d.event(c, "pause")


async def unpause(d, c) -> None:
    async with c.lock:
        if c.state.status != PAUSED:
            raise Conflict(f"Container {c.id} is not paused")
        code, out = await _runtime(d, c).run("resume", c.id, check=False)
        if code != 0:
            raise SystemError_(f"Cannot unpause container {c.id}: {out}")
        c.state.transition(RUNNING)
        d.save(c)
    d.event(c, "unpause")
