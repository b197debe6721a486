"""A container's exit: recorded once, under its lock, then the restart
policy or `--rm`.

Two ways lead here, and both end in `record_locked`:
- the exit monitor sees the container's conmon go (a process that ended by
  itself, or was killed from outside): `on_conmon_exit` takes the lock;
- a verb that ends the container itself (`stop`, `kill -9`, `rm -f`) waits for
  conmon under the lock it already holds and records the exit before it
  answers, so the client's next request sees `exited` (as dockerd's).

Restart policy: Docker's backoff (restart.py), a task per waiting container,
cancelled by any verb that starts, stops or removes it.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Awaitable, Callable, Protocol

from ..errors import DockyardError
from ..runtime import conmon
from . import restart
from .container import EXITED, PAUSED, RESTARTING, RUNNING, Container, now_rfc3339
from .paths import Layout
from .teardown import Teardown

log = logging.getLogger("dockyard.exits")

EXIT_UNKNOWN = 255


class _Health(Protocol):
    def unwatch(self, cid: str) -> None: ...


class ExitHandler:
    def __init__(self, layout: Layout, teardown: Teardown, health: _Health, save: Callable[[Container], None],
                 event: Callable[..., None], volume_events: Callable[[Container, str], None],
                 start_locked: Callable[[Container], Awaitable[None]],
                 remove: Callable[[Container], Awaitable[None]]):
        """`start_locked`: start a container whose lock the caller holds (a
        restart); `remove`: `rm -f -v` that takes the lock itself (`--rm`)."""
        self.layout = layout
        self.teardown = teardown
        self.health = health
        self.save = save
        self.event = event
        self.volume_events = volume_events
        self.start_locked = start_locked
        self.remove = remove
        self._backoff: dict[str, restart.Backoff] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self._unfinished: dict[str, Container] = {}   # exited, network teardown still to finish

    # ------------------------------------------------------------ recording
    async def on_conmon_exit(self, c: Container, conmon_pid: int = 0) -> None:
        """The container's conmon `conmon_pid` is gone (the monitor saw it; 0:
        recovery found it gone)."""
        async with c.lock:
            if c.state.status not in (RUNNING, PAUSED):
                return          # a verb holding the lock recorded it already
            if conmon_pid and c.conmon_pid and conmon_pid != c.conmon_pid:
                return          # ... and the container runs again, under a new conmon
            delay = await self.record_locked(c)
        await self.follow_up(c, delay)

    async def record_locked(self, c: Container, exit_code: int | None = None) -> float | None:
        """Record how the container ended and clean up what its start made.
        Called with c.lock held. Returns the delay after which the restart
        policy wants it back (then it is RESTARTING), else None; call
        `follow_up` with it once the lock is released."""
        paths = self.layout.container(c.id)
        code = conmon.read_exit_code(paths, c.id) if exit_code is None else exit_code
        c.state.oom_killed = os.path.exists(paths.oom_file)
        c.state.exit_code = EXIT_UNKNOWN if code is None else code
        if code is None:
            c.state.error = "container exit status unknown (supervisor died)"
        c.state.pid = 0
        c.state.finished_at = now_rfc3339()
        c.state.transition(EXITED)
        delay = None
        try:
            # the exit code is on disk before cleanup consumes conmon's exit file
            # (a full disk defers the save: the in-memory state stands, see lookup.py)
            self.save(c)
            self.health.unwatch(c.id)
            try:
                await self.teardown.after_exit(c)
            except Exception as e:
                # all but the network's records went (a full disk keeps those):
                # retried by `retry_cleanup`, and by the next start (lifecycle.py)
                log.warning("cleaning up after %s: %s", c.id[:12], e)
                self._unfinished[c.id] = c
            ran_for = _since(c.state.started_at)
            if c.state.oom_killed:
                self.event(c, "oom")
            self.event(c, "die", exitCode=c.state.exit_code, execDuration=int(ran_for))
            self.volume_events(c, "unmount")
            again = restart.should_restart(c.restart_policy, c.state.exit_code, c.restart_count,
                                           c.state.manually_stopped)
            if again:
                c.state.transition(RESTARTING)
                delay = self._backoff.setdefault(c.id, restart.Backoff()).next(ran_for)
            self.save(c)
        finally:
            c.notify_exit()     # waiters (`docker wait`, an attached run) hear of it whatever failed
        return delay

    async def follow_up(self, c: Container, delay: float | None) -> None:
        """After the lock: schedule the restart, or remove a `--rm` container."""
        if delay is not None:
            self._tasks[c.id] = asyncio.ensure_future(self._restart_later(c, delay))
        elif c.host_config.get("AutoRemove"):
            try:
                await self.remove(c)
            except DockyardError:
                pass

    # ------------------------------------------------------------ restart policy
    async def _restart_later(self, c: Container, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            async with c.lock:
                if c.state.status != RESTARTING or c.state.manually_stopped:
                    return
                c.restart_count += 1
                try:
                    await self.start_locked(c)
                except DockyardError as e:
                    log.warning("restart of %s failed: %s", c.id, e.message)
        except asyncio.CancelledError:
            pass
        finally:
            if self._tasks.get(c.id) is asyncio.current_task():
                del self._tasks[c.id]

    def cancel_restart(self, c: Container) -> None:
        """A verb took over (start, stop, rm): no pending restart; RESTARTING -> EXITED."""
        t = self._tasks.pop(c.id, None)
        if t:
            t.cancel()
        if c.state.status == RESTARTING:
            c.state.transition(EXITED)
            self.save(c)

    async def retry_cleanup(self) -> None:
        """The daemon's periodic retry of unfinished exit cleanups."""
        for cid, c in list(self._unfinished.items()):
            async with c.lock:          # never beside a start that connects it again
                if self._unfinished.get(cid) is not c:
                    continue            # removed meanwhile
                if c.state.status in (RUNNING, PAUSED):
                    self._unfinished.pop(cid, None)     # its start dropped them (lifecycle.py)
                    continue
                try:
                    await self.teardown.network(c)
                except Exception:
                    continue
                self._unfinished.pop(cid, None)

    def forget(self, c: Container) -> None:
        """The container is gone (its removal tore everything down)."""
        self._unfinished.pop(c.id, None)

    def reset_backoff(self, c: Container) -> None:
        self._backoff.pop(c.id, None)

    def close(self) -> None:
        for t in list(self._tasks.values()):
            t.cancel()


def _since(rfc: str) -> float:
    from .logs import parse_time
    try:
        return time.time() - parse_time(rfc.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
