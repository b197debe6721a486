"""The daemon: owns the stores and the container lifecycle verbs.

Public verbs (create/start/stop/kill/restart/remove/wait/rename) take the
container's lock where state changes and delegate to small helpers; every
state change goes through `State.transition` and is persisted at once.
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import time
from dataclasses import dataclass

from ..errors import Conflict, DockyardError, InvalidParameter, NotModified, NoSuchContainer
from ..images.service import ImageService
from ..network.manager import NetworkManager
from ..runtime import conmon
from ..runtime.criu import CriuProbe
from ..runtime.hostfacts import HostFacts
from ..runtime.runtimes import Runtimes
from ..fsutil import dir_size as _dir_size
from ..store.db import Database
from . import ids, names, restart, signals
from .attach import AttachManager
from . import resource_events
from .events import Events
from .health import HealthMonitor
from .container import (CREATED, DEAD, EXITED, PAUSED, REMOVING, RESTARTING, RUNNING, Container,
                        now_rfc3339)
from .lookup import ContainerStore
from .monitor import ExitMonitor
from .rootfs import RootFS
from .start import StartContext, Trace, run_steps
from .start.bundle import paths_for
from .start.network import undo as network_undo

log = logging.getLogger("dockyard.daemon")

EXIT_UNKNOWN = 255


@dataclass
class DaemonConfig:
    data_root: str = "/var/lib/dockyard"
    exec_root: str = "/run/dockyard"
    host: str = "unix:///run/dockyard/dockyard.sock"
    pidfile: str = ""
    default_runtime: str = "crun"
    bridge: str = "dockyard0"
    bip: str | None = None
    debug: bool = False
    log_level: str = "info"
    cgroup_parent: str = "dockyard"  # --cgroup-parent: containers live at /<parent>/<id>
    criu_path: str | None = None     # --criu-path; else criu on PATH, else scripts/install-criu.sh's
    userns_remap: str = ""           # --userns-remap: default | user[:group] (runtime/userns.py)


class Daemon:
    def __init__(self, config: DaemonConfig):
        self.config = config
        self.started_at = time.time()
        for d in (config.data_root, config.exec_root):
            os.makedirs(d, mode=0o711, exist_ok=True)
        os.makedirs(os.path.join(config.data_root, "containers"), mode=0o700, exist_ok=True)
        self.db = Database(os.path.join(config.data_root, "dockyard.db"))
        self.facts = HostFacts.detect()
        self.runtimes = Runtimes(config.exec_root, config.default_runtime)
        self.images = ImageService(self.db, os.path.join(config.data_root, "image"))
        from ..volumes.service import VolumeService
        self.volumes = VolumeService(self.db, config.data_root)
        self.remap = None
        if config.userns_remap:
            from ..runtime.userns import Remap
            self.remap = Remap(config.userns_remap, config.data_root)
            self.volumes.owner = self.remap.owner
            # the remapped root must reach its /etc/hosts & co under containers/<id>
            os.chmod(os.path.join(config.data_root, "containers"), 0o711)
        self.images.in_use = self._image_users
        self.networks = NetworkManager(self.db, config.exec_root, bridge=config.bridge, bip=config.bip)
        self.containers = ContainerStore(self.db)
        self.attach = AttachManager()
        self.criu = CriuProbe(config.criu_path, config.exec_root)
        from .exec import ExecManager
        self.execs = ExecManager(self)
        from .logrotate import LogRotator
        self.logrotate = LogRotator(self)
        self.events = Events(path=os.path.join(config.data_root, "events.jsonl"))   # kept across restarts
        self.health = HealthMonitor(self)
        self.monitor = ExitMonitor(self._on_conmon_exit)
        self._backoff: dict[str, restart.Backoff] = {}
        self._restart_tasks: dict[str, asyncio.Task] = {}
        self._bg: set[asyncio.Task] = set()
        self._busy_cgroups: set[str] = set()   # exited containers whose cgroups could not go yet

    # ------------------------------------------------------------ set-up
    async def setup(self) -> None:
        self.criu.start()     # `criu check` runs beside the network set-up
        from ..network.dns import DnsService
        self.networks.dns = DnsService(asyncio.get_running_loop(), self.networks)   # user networks' DNS
        self.networks.container_name = lambda cid: getattr(self.containers.find(cid), "name", None)
        await asyncio.to_thread(self.networks.setup)
        from .recover import recover
        await recover(self)
        self.logrotate.start()
        self.health.resume()

    async def shutdown(self) -> None:
        """Leave containers running (conmon keeps them); just stop watching."""
        for t in list(self._restart_tasks.values()) + list(self._bg):
            t.cancel()
        for cid in list(self._busy_cgroups):   # one last try; recover() sweeps the rest
            remove_container_cgroups(self.config.cgroup_parent, cid)
        remove_cgroup_parent(self.config.cgroup_parent)
        self.monitor.close()
        self.execs.close()
        if self.remap is not None:
            self.remap.release()     # running overlays keep their layers; new starts remount them
        self.logrotate.close()
        if self.networks.dns is not None:
            self.networks.dns.close_all()
        self.health.close()
        self.events.close()
        self.db.close()

    def _spawn(self, coro) -> asyncio.Task:
        t = asyncio.ensure_future(coro)
        self._bg.add(t)
        t.add_done_callback(self._bg.discard)
        return t

    def _image_users(self, image_id: str) -> list[tuple[str, bool]]:
        return [(c.id, c.state.running) for c in self.containers if c.image == image_id]

    def save(self, c: Container) -> None:
        self.containers.save(c)

    def event(self, c: Container, action: str, **extra) -> None:
        """A container event with Docker's attributes: labels, image, name, extras."""
        attrs = dict(c.config.get("Labels") or {})
        attrs.update(image=c.image_ref, name=c.name, **extra)
        self.events.emit("container", action, c.id, attrs)

    def paths(self, c: Container):
        return paths_for(self, c.id)

    def container_dir(self, c: Container) -> str:
        return os.path.join(self.config.data_root, "containers", c.id)

    # ------------------------------------------------------------ create
    def create(self, body: dict, name: str | None) -> Container:
        from .create import build_container
        if name:
            name = names.validate(name)
        else:
            for attempt in range(20):
                name = names.generate(attempt)
                if not self.containers.name_taken(name):
                    break
        c = build_container(self, body, name)
        mounts = self.volumes.plan(c.host_config, c.config, self.images.config(c.image) or {},
                                   self.containers)   # 400 on a bad mount, before anything is made
        self.containers.add(c)        # reserves the name atomically
        try:
            os.makedirs(self.container_dir(c), mode=0o700, exist_ok=True)
            RootFS(self.config.data_root, c.id).create()
            self.volumes.attach(c.id, mounts)
        except BaseException:
            self.containers.remove(c)
            shutil.rmtree(self.container_dir(c), ignore_errors=True)
            RootFS(self.config.data_root, c.id).remove()
            raise
        self.event(c, "create")
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
                raise Conflict(f"container is marked for removal and cannot be started")
            if reset_restart:
                self._cancel_restart(c)
                c.restart_count = 0
                c.state.manually_stopped = False
                self._backoff.pop(c.id, None)
            try:
                await self._start_locked(c, trace, restore)
            except DockyardError:
                if c.host_config.get("AutoRemove"):   # as dockerd: --rm also covers a failed start
                    self._spawn(self.remove(c, force=True, volumes=True))
                raise

    async def _start_locked(self, c: Container, trace: Trace, restore=None) -> None:
        ctx = StartContext(self, c, trace, restore=restore)
        try:
            await run_steps(ctx)
        except DockyardError as e:
            self._start_failed(c, trace, e, getattr(e, "exit_code", EXIT_UNKNOWN))
            raise
        except Exception as e:
            log.exception("start of %s failed", c.id)
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
        self.save(c)
        self.monitor.watch(c.id, ctx.conmon_pid)
        self.logrotate.watch(c)
        resource_events.volume_mounts(self, c, "mount")
        self.event(c, "start")
        self.health.watch(c)

    def _start_failed(self, c: Container, trace: Trace, err: DockyardError, code: int) -> None:
        self.attach.fail_waiters(c.id, err)
        c.state.error = err.message
        c.state.exit_code = code
        c.network = {}
        if c.state.status == RESTARTING:
            c.state.transition(EXITED)
            c.state.finished_at = now_rfc3339()
        c.start_trace = trace.to_api()
        self.save(c)

    # ------------------------------------------------------------ exit
    def _on_conmon_exit(self, cid: str) -> None:
        c = self.containers.find(cid)
        if c is not None:
            self._spawn(self.handle_exit(c))

    async def handle_exit(self, c: Container, exit_code: int | None = None) -> None:
        """The container's conmon is gone: record how it ended, clean up,
        then apply the restart policy or --rm."""
        async with c.lock:
            if c.state.status not in (RUNNING, PAUSED):
                return
            paths = self.paths(c)
            code = conmon.read_exit_code(paths, c.id) if exit_code is None else exit_code
            c.state.oom_killed = os.path.exists(paths.oom_file)
            c.state.exit_code = EXIT_UNKNOWN if code is None else code
            if code is None:
                c.state.error = "container exit status unknown (supervisor died)"
            c.state.pid = 0
            c.state.finished_at = now_rfc3339()
            c.state.transition(EXITED)
            self.save(c)   # the exit code is on disk before cleanup consumes conmon's exit file
            self.health.unwatch(c.id)
            await self._cleanup_after_exit(c)
            ran_for = _since(c.state.started_at)
            if c.state.oom_killed:
                self.event(c, "oom")
            self.event(c, "die", exitCode=c.state.exit_code, execDuration=int(ran_for))
            resource_events.volume_mounts(self, c, "unmount")
            policy = c.restart_policy
            again = restart.should_restart(policy, c.state.exit_code, c.restart_count, c.state.manually_stopped)
            if again:
                c.state.transition(RESTARTING)
            self.save(c)
            c.notify_exit()
        if again:
            delay = self._backoff.setdefault(c.id, restart.Backoff()).next(ran_for)
            self._restart_tasks[c.id] = asyncio.ensure_future(self._restart_later(c, delay))
        elif c.host_config.get("AutoRemove"):
            try:
                await self.remove(c, force=True, volumes=True)
            except DockyardError:
                pass

    async def _cleanup_after_exit(self, c: Container) -> None:
        """Undo the start path: runtime state, rootfs, network, bundle."""
        rt = self.runtimes.available.get(c.runtime) or self.runtimes.get(None)
        await rt.delete_exited(c.id, lambda: remove_container_cgroups(self.config.cgroup_parent, c.id))
        RootFS(self.config.data_root, c.id).unmount()
        from ..volumes import shm
        shm.unmount(self.config.exec_root, c.id)     # --ipc shareable's /dev/shm
        if c.network.get("Mode") in ("bridge", "none"):
            await asyncio.to_thread(self.networks.disconnect, c.id)
        paths = self.paths(c)
        shutil.rmtree(paths.bundle, ignore_errors=True)
        for p in (paths.exit_file(c.id), os.path.join(paths.socket_dir, c.id[:12])):
            try:
                os.unlink(p)
            except OSError:
                pass
        if not remove_container_cgroups(self.config.cgroup_parent, c.id):
            # zombies the host's init has not reaped yet keep the cgroup busy
            self._busy_cgroups.add(c.id)
            self._spawn(self._remove_cgroups_later(c.id))
        remove_cgroup_parent(self.config.cgroup_parent)
        c.conmon_pid = 0

    async def _remove_cgroups_later(self, cid: str, tries: int = 50) -> None:
        parent = self.config.cgroup_parent
        for _ in range(tries):
            await asyncio.sleep(0.1)
            if remove_container_cgroups(parent, cid):
                self._busy_cgroups.discard(cid)
                remove_cgroup_parent(parent)
                return
        log.warning("cgroups of %s are still busy; the next daemon start removes them", cid[:12])

    async def _restart_later(self, c: Container, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            async with c.lock:
                if c.state.status != RESTARTING or c.state.manually_stopped:
                    return
                c.restart_count += 1
                try:
                    await self._start_locked(c, Trace())
                except DockyardError as e:
                    log.warning("restart of %s failed: %s", c.id, e.message)
        except asyncio.CancelledError:
            pass
        finally:
            if self._restart_tasks.get(c.id) is asyncio.current_task():
                del self._restart_tasks[c.id]

    def _cancel_restart(self, c: Container) -> None:
        t = self._restart_tasks.pop(c.id, None)
        if t:
            t.cancel()
        if c.state.status == RESTARTING:
            c.state.transition(EXITED)
            self.save(c)

    # ------------------------------------------------------------ stop / kill
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

    async def stop(self, c: Container, timeout: int | None = None, sig: str | None = None) -> None:
        if c.state.status == RESTARTING:
            c.state.manually_stopped = True
            self._cancel_restart(c)
            return
        if not c.state.running:
            raise NotModified("container already stopped")
        c.state.manually_stopped = True
        self.save(c)
        stopsig = signals.parse(sig or c.config.get("StopSignal") or None)
        if timeout is None:
            timeout = c.config.get("StopTimeout")
            timeout = 10 if timeout is None else int(timeout)
        exited = c.exit_event
        if c.state.status == PAUSED:
            await self._unfreeze(c)
        self.event(c, "kill", signal=int(stopsig))
        self._signal(c, stopsig)
        if timeout < 0:
            await exited.wait()
            self.event(c, "stop")
            return
        try:
            await asyncio.wait_for(exited.wait(), timeout)
            self.event(c, "stop")
            return
        except asyncio.TimeoutError:
            pass
        self.event(c, "kill", signal=int(signal.SIGKILL))
        self._signal(c, signal.SIGKILL)
        try:
            await asyncio.wait_for(exited.wait(), 30)
        except asyncio.TimeoutError:
            raise DockyardError(f"container {c.id} did not exit within 30 seconds of SIGKILL") from None
        self.event(c, "stop")

    async def _unfreeze(self, c: Container) -> None:
        rt = self.runtimes.available.get(c.runtime) or self.runtimes.get(None)
        await rt.run("resume", c.id, check=False)

    async def kill(self, c: Container, sig: str | None, ref: str) -> None:
        if not c.state.running:
            raise Conflict(f"Cannot kill container: {ref}: Container {c.id} is not running")
        n = signals.parse(sig, signal.SIGKILL)
        if n == signal.SIGKILL:
            c.state.manually_stopped = True  # Docker: an explicit kill counts as a user stop for restart
            self.save(c)
        self.event(c, "kill", signal=int(n))
        self._signal(c, n)
        if n == signal.SIGKILL and c.state.status == PAUSED:
            await self._unfreeze(c)     # a frozen task takes SIGKILL only once thawed (Docker resumes too)

    async def restart_container(self, c: Container, timeout: int | None, sig: str | None = None) -> None:
        if c.state.running:
            await self.stop(c, timeout, sig)
        await self.start(c)
        self.event(c, "restart")

    # ------------------------------------------------------------ wait
    async def wait(self, c: Container, condition: str) -> int:
        if condition == "removed":
            if c.id not in {x.id for x in self.containers}:
                return c.state.exit_code
            await c.removed_event.wait()
            return c.state.exit_code
        if condition == "next-exit" or c.state.status in (RUNNING, PAUSED, RESTARTING):
            await c.exit_event.wait()
        return c.state.exit_code

    # ------------------------------------------------------------ remove
    async def remove(self, c: Container, force: bool = False, volumes: bool = False) -> None:
        if c.state.running:
            if not force:
                raise Conflict(f"You cannot remove a running container {c.id}. Stop the container before "
                               "attempting removal or force remove")
            c.state.manually_stopped = True
            exited = c.exit_event
            if c.state.status == PAUSED:
                await self._unfreeze(c)
            self._signal(c, signal.SIGKILL)
            try:
                await asyncio.wait_for(exited.wait(), 30)
            except asyncio.TimeoutError:
                raise DockyardError(f"could not kill running container {c.id}, cannot remove") from None
        async with c.lock:
            # the removal may have happened while we waited for the lock
            # (--rm removes a container as soon as it exits): done, then
            if c.id not in {x.id for x in self.containers}:
                return
            self._cancel_restart(c)
            if c.state.running:
                raise Conflict(f"You cannot remove a running container {c.id}. Stop the container before "
                               "attempting removal or force remove")
            c.state.transition(REMOVING)
            self.save(c)
            await self._remove_files(c, volumes)
            self.containers.remove(c)
            self.event(c, "destroy")
            self._backoff.pop(c.id, None)
            self.attach.fail_waiters(c.id, NoSuchContainer(c.id))
            self.execs.forget_container(c.id)
            c.removed_event.set()
        # an image removed with `rmi -f` while this container used it goes now
        await asyncio.to_thread(self.images.collect_garbage)

    async def _remove_files(self, c: Container, volumes: bool = False) -> None:
        self.volumes.release(c.id, remove_anonymous=volumes)
        RootFS(self.config.data_root, c.id).remove()
        if c.network.get("Mode") in ("bridge", "none"):
            await asyncio.to_thread(self.networks.disconnect, c.id)
        shutil.rmtree(self.container_dir(c), ignore_errors=True)
        shutil.rmtree(self.paths(c).bundle, ignore_errors=True)

    # ------------------------------------------------------------ rename / prune
    def rename(self, c: Container, new: str) -> None:
        new = names.validate(new)
        if new == c.name:
            raise InvalidParameter("Renaming a container with the same name as its current name")
        old = c.name
        self.containers.rename(c, new)
        self.event(c, "rename", oldName="/" + old)

    async def prune(self, keep) -> dict:
        deleted, reclaimed = [], 0
        for c in self.containers:
            if c.state.status in (RUNNING, PAUSED, RESTARTING) or not keep(c):
                continue
            reclaimed += _dir_size(RootFS(self.config.data_root, c.id).upper)
            try:
                await self.remove(c)
                deleted.append(c.id)
            except DockyardError:
                pass
        self.events.emit("container", "prune", "", {"reclaimed": reclaimed})
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}


def _since(rfc: str) -> float:
    from .logs import parse_time
    try:
        return time.time() - parse_time(rfc.replace("Z", "+00:00"))
    except ValueError:
        return 0.0



def _cgroup_hierarchies(base: str = "/sys/fs/cgroup") -> list[str]:
    try:
        return [os.path.join(base, d) for d in os.listdir(base)] + [base]
    except OSError:
        return []


def remove_container_cgroups(parent: str, cid: str) -> bool:
    """rmdir what the runtime should have removed; True when none is left."""
    left = False
    for h in _cgroup_hierarchies():
        p = os.path.join(h, parent, cid)
        if os.path.isdir(p):
            try:
                os.rmdir(p)
            except OSError:
                left = True
    return not left


def remove_cgroup_parent(parent: str = "dockyard") -> None:
    """The runtime removes the container's cgroup; the `dockyard` parent it
    made is ours to remove once empty (rmdir fails while others live)."""
    base = "/sys/fs/cgroup"
    try:
        hierarchies = [os.path.join(base, d) for d in os.listdir(base)]
    except OSError:
        return
    for h in hierarchies + [base]:
        p = os.path.join(h, parent)
        if os.path.isdir(p):
            try:
                os.rmdir(p)
            except OSError:
                pass
