"""The container verbs: create, start, stop, kill, restart, wait, remove,
rename, prune.

Every public verb that changes a container's state takes the container's
lock and does its work through internal helpers (`_start_locked`,
`_end_locked` ...) that expect the lock held, as libpod's container_api.go
does over container_internal.go. State changes go through
`State.transition` (container.py) and are saved at once.

A verb that ends the container (`stop`, `kill` with SIGKILL, `rm -f`) waits
for its conmon to go while holding the lock and records the exit itself
(exits.py), so the answer comes after the exit is recorded: `inspect` or `rm`
right after `kill` sees an exited container, as with dockerd.
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
from typing import TYPE_CHECKING

from ..errors import Conflict, DockyardError, InvalidParameter, NoSpace, NotModified, NoSuchContainer
from ..fsutil import dir_size
from ..runtime import conmon
from ..store.db import is_full
from . import names, resource_events, signals
from .container import DEAD, EXITED, PAUSED, REMOVING, RESTARTING, RUNNING, Container, now_rfc3339
from .exits import EXIT_UNKNOWN, ExitHandler
from .start import StartContext, Trace, run_steps

if TYPE_CHECKING:
    from .daemon import Daemon

log = logging.getLogger("dockyard.lifecycle")

KILL_GRACE = 30      # seconds a SIGKILLed container may take to be reaped before we give up


class Lifecycle:
    def __init__(self, d: "Daemon"):
        self.d = d
        self.exits = ExitHandler(d.layout, d.teardown, d.health, d.save, d.event,
                                 lambda c, action: resource_events.volume_mounts(d, c, action),
                                 start_locked=self._restart_locked,
                                 remove=lambda c: self.remove(c, force=True, volumes=True))
        self._bg: set[asyncio.Task] = set()

    def spawn(self, coro) -> asyncio.Task:
        t = asyncio.ensure_future(coro)
        self._bg.add(t)
        t.add_done_callback(self._bg.discard)
        return t

    def close(self) -> None:
        self.exits.close()
        for t in list(self._bg):
            t.cancel()

    # ------------------------------------------------------------ create
    def create(self, body: dict, name: str | None, api_before_1_44: bool = False) -> Container:
        from .create import build_container
        d = self.d
        if name:
            name = names.validate(name)
        else:
            for attempt in range(20):
                name = names.generate(attempt)
                if not d.containers.name_taken(name):
                    break
        c = build_container(d, body, name)
        mounts = d.volumes.plan(c.host_config, c.config, d.images.config(c.image) or {},
                                d.containers, api_before_1_44)   # 400 on a bad mount, before anything is made
        d.containers.add(c)        # reserves the name atomically
        paths = d.layout.container(c.id)
        try:
            os.makedirs(paths.dir, mode=0o700, exist_ok=True)
            paths.rootfs.create()
            d.volumes.attach(c.id, mounts)
        except BaseException as e:
            d.containers.remove(c)
            shutil.rmtree(paths.dir, ignore_errors=True)
            paths.rootfs.remove()
            if isinstance(e, OSError) and is_full(e):   # moby's wording, not Python's
                raise NoSpace(f"mkdir {e.filename or paths.dir}") from e
            raise
        d.event(c, "create")
        return c

    # ------------------------------------------------------------ start
    async def start(self, c: Container, trace: Trace | None = None, *, reset_restart: bool = True,
                    restore=None) -> None:
        trace = trace or Trace()
        async with c.lock:
            st = c.state.status
            if st == RUNNING:
                raise NotModified("container already started")
            if st == PAUSED:
                raise Conflict("cannot start a paused container, try unpause instead")
            if st in (REMOVING, DEAD):
                raise Conflict("container is marked for removal and cannot be started")
            if reset_restart:
                self.exits.cancel_restart(c)
                c.restart_count = 0
                c.state.manually_stopped = False
                self.exits.reset_backoff(c)
            try:
                await self._start_locked(c, trace, restore)
            except DockyardError:
                if c.host_config.get("AutoRemove"):   # as dockerd: --rm also covers a failed start
                    self.spawn(self.remove(c, force=True, volumes=True))
                raise

    async def _restart_locked(self, c: Container) -> None:
        await self._start_locked(c, Trace())

    async def _start_locked(self, c: Container, trace: Trace, restore=None) -> None:
        d = self.d
        ctx = StartContext(d, c, trace, restore=restore)
        try:
            if d.networks.endpoints(c.id):
                # a container that is not running has no endpoints: these are what
                # its last exit could not forget (a full disk); the error is the start's
                await d.teardown.network(c)
            await run_steps(ctx)
        except DockyardError as e:
            self._start_failed(c, trace, e, getattr(e, "exit_code", EXIT_UNKNOWN))
            raise
        except Exception as e:
            log.exception("start of %s failed", c.id)
            if is_full(e):      # moby's wording: the OS error, "no space left on device"
                err = NoSpace(f"write {getattr(e, 'filename', None) or d.layout.container(c.id).dir}")
            else:
                err = DockyardError(str(e) or type(e).__name__)
            self._start_failed(c, trace, err, EXIT_UNKNOWN)
            raise err from e
        c.state.transition(RUNNING)
        c.state.pid = ctx.pid
        c.state.error = ""
        c.state.exit_code = 0
        c.state.oom_killed = False
        c.state.started_at = now_rfc3339()
        c.conmon_pid = ctx.conmon_pid
        c.start_trace = trace.to_api()
        d.save(c)
        d.monitor.watch(c.id, ctx.conmon_pid)
        d.logrotate.watch(c)
        resource_events.volume_mounts(d, c, "mount")
        d.event(c, "start")
        d.health.watch(c)

    def _start_failed(self, c: Container, trace: Trace, err: DockyardError, code: int) -> None:
        self.d.attach.fail_waiters(c.id, err)
        c.state.error = err.message
        c.state.exit_code = code
        c.network = {}
        if c.state.status == RESTARTING:
            c.state.transition(EXITED)
            c.state.finished_at = now_rfc3339()
        c.start_trace = trace.to_api()
        self.d.save(c)

    # ------------------------------------------------------------ exit
    def on_conmon_exit(self, cid: str, conmon_pid: int) -> None:
        """The exit monitor's callback (called on the loop)."""
        c = self.d.containers.find(cid)
        if c is not None:
            self.spawn(self.exits.on_conmon_exit(c, conmon_pid))

    # ------------------------------------------------------------ signals
    def _signal(self, c: Container, sig: int) -> None:
        pid = c.state.pid
        fd = os.pidfd_open(pid) if pid and conmon.pid_alive(pid) else None
        if fd is None:
            return
        try:
            signal.pidfd_send_signal(fd, sig)
        except ProcessLookupError:
            pass
        finally:
            os.close(fd)

    async def _thaw(self, c: Container) -> None:
        """A frozen task takes SIGKILL only once thawed (Docker resumes too)."""
        await self.d.runtime_for(c).resume(c.id, check=False)

    async def _wait_gone(self, c: Container, timeout: float | None) -> bool:
        """Wait (lock held) until the container's conmon is gone: it exits right
        after the container, having written the exit code. Without a known
        conmon, the container's own process is waited for."""
        pid = c.conmon_pid or conmon.conmon_pid(self.d.layout.container(c.id)) or c.state.pid
        return await wait_process_gone(pid, timeout) if pid else True

    async def _end_locked(self, c: Container, first: int, timeout: float | None) -> float | None:
        """Send `first`; after `timeout` seconds (None: wait for good) SIGKILL;
        then record the exit. Lock held. Returns the restart delay (see exits)."""
        d = self.d
        if c.state.status == PAUSED:
            await self._thaw(c)
        d.event(c, "kill", signal=int(first))
        self._signal(c, first)
        if first != signal.SIGKILL and not await self._wait_gone(c, timeout):
            d.event(c, "kill", signal=int(signal.SIGKILL))
            self._signal(c, signal.SIGKILL)
        if not await self._wait_gone(c, KILL_GRACE):
            raise DockyardError(f"container {c.id} did not exit within {KILL_GRACE} seconds of SIGKILL")
        return await self.exits.record_locked(c)

    # ------------------------------------------------------------ stop / kill / restart
    async def stop(self, c: Container, timeout: int | None = None, sig: str | None = None) -> None:
        stopsig = signals.parse(sig or c.config.get("StopSignal") or None)
        async with c.lock:
            if c.state.status == RESTARTING:
                c.state.manually_stopped = True
                self.exits.cancel_restart(c)
                return
            if not c.state.running:
                raise NotModified("container already stopped")
            c.state.manually_stopped = True
            d = self.d
            d.save(c)
            if timeout is None:
                timeout = c.config.get("StopTimeout")
                timeout = 10 if timeout is None else int(timeout)
            delay = await self._end_locked(c, stopsig, None if timeout < 0 else timeout)
            d.event(c, "stop")
        await self.exits.follow_up(c, delay)

    async def kill(self, c: Container, sig: str | None, ref: str) -> None:
        n = signals.parse(sig, signal.SIGKILL)
        async with c.lock:
            if not c.state.running:
                raise Conflict(f"Cannot kill container: {ref}: Container {c.id} is not running")
            if n != signal.SIGKILL:
                self.d.event(c, "kill", signal=int(n))
                self._signal(c, n)
                return
            c.state.manually_stopped = True  # Docker: an explicit kill counts as a user stop for restart
            self.d.save(c)
            delay = await self._end_locked(c, n, None)
        await self.exits.follow_up(c, delay)

    async def restart(self, c: Container, timeout: int | None, sig: str | None = None) -> None:
        """Stop if running, then start; as dockerd, never a 304 (a container that
        stopped meanwhile is simply started, one started meanwhile restarted)."""
        try:
            await self.stop(c, timeout, sig)
        except NotModified:
            pass
        try:
            await self.start(c)
        except NotModified:
            pass
        self.d.event(c, "restart")

    # ------------------------------------------------------------ wait
    async def wait(self, c: Container, condition: str) -> int:
        if condition == "removed":
            if self.d.containers.find(c.id) is None:
                return c.state.exit_code
            await c.removed_event.wait()
            return c.state.exit_code
        if condition == "next-exit" or c.state.status in (RUNNING, PAUSED, RESTARTING):
            await c.exit_event.wait()
        return c.state.exit_code

    # ------------------------------------------------------------ remove
    async def remove(self, c: Container, force: bool = False, volumes: bool = False) -> None:
        d = self.d
        async with c.lock:
            # the removal may have happened while we waited for the lock
            # (--rm removes a container as soon as it exits): done, then
            if d.containers.find(c.id) is None:
                return
            if c.state.status == RESTARTING and not force:
                # dockerd's restarting container is still "running" (its restart
                # manager owns it): `rm` without force refuses it the same way
                raise Conflict(f"You cannot remove a restarting container {c.id}. Stop the container "
                               "before attempting removal or force remove")
            if c.state.running:
                if not force:
                    raise Conflict(f"You cannot remove a running container {c.id}. Stop the container "
                                   "before attempting removal or force remove")
                c.state.manually_stopped = True
                try:
                    await self._end_locked(c, signal.SIGKILL, None)
                except DockyardError:
                    raise DockyardError(f"could not kill running container {c.id}, cannot remove") from None
            self.exits.cancel_restart(c)
            before = c.state.status
            c.state.transition(REMOVING)
            d.save(c)
            try:
                await d.teardown.files(c, volumes)
            except BaseException:
                # its volume references go first (a full disk refuses that): nothing is
                # gone then, and the container stays as it was; once its files started
                # to go, it is dead (as dockerd's). Either way `rm` can try again.
                intact = os.path.isdir(d.layout.container(c.id).rootfs.upper)
                c.state.transition(before if intact else DEAD)
                d.save(c)
                raise
            d.containers.remove(c)
            d.event(c, "destroy")
            self.exits.reset_backoff(c)
            self.exits.forget(c)
            d.attach.fail_waiters(c.id, NoSuchContainer(c.id))
            d.execs.forget_container(c.id)
            # as moby's SetRemoved: the waiters hear of a removal without an error
            # (a failed start's stays in State.Error until then: `docker run --rm`
            # prints Docker's one message, no "Error waiting for container"), and it
            # wakes those waiting for the next exit too (a created container has none)
            c.state.error = ""
            c.removed_event.set()
            c.notify_exit()
        # an image removed with `rmi -f` while this container used it goes now
        await asyncio.to_thread(d.images.collect_garbage)

    # ------------------------------------------------------------ rename / prune
    async def rename(self, c: Container, new: str) -> None:
        new = names.validate(new)
        async with c.lock:
            if new == c.name:
                raise InvalidParameter("Renaming a container with the same name as its current name")
            old = c.name
            try:
                self.d.containers.rename(c, new)
            except Conflict as e:      # moby wraps the name reservation's conflict
                raise Conflict(f"Error when allocating new name: {e.message}") from None
        self.d.event(c, "rename", oldName="/" + old)

    async def prune(self, keep) -> dict:
        d = self.d
        deleted, reclaimed = [], 0
        for c in list(d.containers):
            if c.state.status in (RUNNING, PAUSED, RESTARTING) or not keep(c):
                continue
            size = dir_size(d.layout.container(c.id).rootfs.upper)
            try:
                await self.remove(c)
            except DockyardError:
                continue
            deleted.append(c.id)
            reclaimed += size
        d.events.emit("container", "prune", "", {"reclaimed": reclaimed})
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}


async def wait_process_gone(pid: int, timeout: float | None) -> bool:
    """True once process `pid` (not necessarily our child) is gone, False after
    `timeout` seconds (None: no limit). A pidfd wakes the loop: no polling."""
    try:
        fd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return True
    loop = asyncio.get_running_loop()
    gone = loop.create_future()
    loop.add_reader(fd, lambda: gone.done() or gone.set_result(True))
    try:
        await asyncio.wait_for(asyncio.shield(gone), timeout)
        return True
    except asyncio.TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)
        os.close(fd)
