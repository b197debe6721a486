"""Checkpoint and restore of containers (CRIU through the OCI runtime).

A checkpoint is a directory `<root>/<name>/` where root is the container's
`checkpoints/` dir (Docker's `container.CheckpointDir()`) or a custom dir:

    checkpoint.json   what it was made from (container id, runtime, IP, CRIU)
    images/           CRIU's image files
    work/             CRIU's dump.log

Restore is a start whose last step has conmon run `<runtime> restore`
instead of create+start (see start/supervise.py), so everything a start
does (state, PID, StartedAt, restart policy, trace, rollback) holds.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..errors import Conflict, InvalidParameter, NotFound, NotImplementedYet, SystemError_
from ..runtime import checkpoint as rtc
from ..runtime.criu import Criu
from .container import PAUSED, RUNNING, Container, now_rfc3339

if TYPE_CHECKING:
    from ..runtime.criu import CriuProbe
    from ..runtime.runtimes import Runtimes
    from .lifecycle import Lifecycle
    from .paths import ContainerPaths

log = logging.getLogger("dockyard.checkpoint")

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")    # Docker's restricted name pattern
META = "checkpoint.json"
IMAGES = "images"


class _Daemon(Protocol):
    runtimes: Runtimes
    criu: CriuProbe
    lifecycle: Lifecycle
    def paths(self, c: Container) -> ContainerPaths: ...
    def save(self, c: Container) -> None: ...
    def event(self, c: Container, action: str, **extra) -> None: ...


def validate_name(name: str | None) -> str:
    if not name or not NAME_RE.match(name):
        raise InvalidParameter(f"Invalid checkpoint ID ({name or ''}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name


def root_dir(d: _Daemon, c: Container, custom: str | None) -> str:
    if not custom:
        return d.paths(c).checkpoints
    if not os.path.isabs(custom):
        raise InvalidParameter(f"checkpoint dir must be an absolute path: {custom}")
    return os.path.normpath(custom)


async def require_criu(d: _Daemon) -> Criu:
    criu = await d.criu.get()
    if not criu.usable:
        raise NotImplementedYet(f"checkpoint/restore is not available on this daemon: {criu.reason}")
    return criu


def _runtime(d: _Daemon, c: Container):
    rt = d.runtimes.get(c.runtime or c.host_config.get("Runtime") or None)
    reason = rtc.unsupported_reason(rt)
    if reason:
        raise NotImplementedYet(reason)
    return rt


def read_meta(path: str) -> dict:
    try:
        with open(os.path.join(path, META)) as f:
            meta = json.load(f)
        if not isinstance(meta, dict) or not os.path.isdir(os.path.join(path, IMAGES)):
            raise ValueError
        return meta
    except (OSError, ValueError):
        raise InvalidParameter(f"{path} is not a usable checkpoint (no readable {META} and {IMAGES}/)") from None


def write_meta(path: str, meta: dict) -> None:
    tmp = os.path.join(path, META + ".tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f)
    os.replace(tmp, os.path.join(path, META))


# ---------------------------------------------------------------- create / list / delete

async def create(d: _Daemon, c: Container, ref: str, name: str | None, custom_dir: str | None, exit_: bool = True,
                 timeout: float = 120) -> str:
    """Checkpoint a running container; with exit_ it stops (and is not restarted).
    CRIU's dump is killed (and the checkpoint undone) past timeout seconds."""
    name = validate_name(name)
    criu = await require_criu(d)
    root = root_dir(d, c, custom_dir)
    exited = c.exit_event
    async with c.lock:
        if c.state.status not in (RUNNING, PAUSED):
            raise Conflict(f"container {ref} is not running")
        rt = _runtime(d, c)
        target = os.path.join(root, name)
        if os.path.lexists(target):
            raise Conflict(f"checkpoint with name {name} already exists for container {ref}")
        os.makedirs(root, mode=0o700, exist_ok=True)
        os.mkdir(target, 0o700)
        images, work = os.path.join(target, IMAGES), os.path.join(target, "work")
        os.mkdir(images, 0o700)
        os.mkdir(work, 0o700)
        was_stopped = c.state.manually_stopped
        if exit_:
            c.state.manually_stopped = True    # the restart policy must not bring it back
            d.save(c)
        t0 = time.perf_counter()
        try:
            # a running container is frozen first: CRIU otherwise waits ~100 ms on the v1 freezer
            await rt.checkpoint(c.id, criu, images, work, leave_running=not exit_,
                                freeze_pid=c.state.pid if c.state.status == RUNNING else None, timeout=timeout)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            if exit_:
                c.state.manually_stopped = was_stopped
                d.save(c)
            raise
        t1 = time.perf_counter()
        ep = c.network.get("Endpoint") or {}
        write_meta(target, {"Name": name, "ContainerID": c.id, "Created": now_rfc3339(), "Runtime": rt.name,
                            "IPAddress": ep.get("IPAddress", ""), "Exit": exit_, "CriuVersion": criu.version})
    if exit_:
        # conmon saw the process go; wait until the daemon recorded the exit, so a
        # `start --checkpoint` right after does not find it still running
        try:
            await asyncio.wait_for(exited.wait(), 30)
        except asyncio.TimeoutError:
            log.warning("%s: no exit seen 30 s after its checkpoint", c.short_id)
    log.info("checkpoint %s of %s: %s %.1f ms, exit recorded %.1f ms later", name, c.short_id, rt.name,
             (t1 - t0) * 1000, (time.perf_counter() - t1) * 1000)
    _event(d, c, "checkpoint")
    return target


def list_(d: _Daemon, c: Container, custom_dir: str | None) -> list[dict]:
    root = root_dir(d, c, custom_dir)
    try:
        names = sorted(e.name for e in os.scandir(root) if e.is_dir())
    except FileNotFoundError:
        return []
    except OSError as e:
        raise SystemError_(f"cannot read checkpoint dir {root}: {e.strerror}") from None
    return [{"Name": n} for n in names]


def find(d: _Daemon, c: Container, ref: str, name: str | None, custom_dir: str | None) -> str:
    name = validate_name(name)
    path = os.path.join(root_dir(d, c, custom_dir), name)
    if not os.path.isdir(path):
        raise NotFound(f"checkpoint {name} does not exist for container {ref}")
    return path


def delete(d: _Daemon, c: Container, ref: str, name: str | None, custom_dir: str | None) -> None:
    shutil.rmtree(find(d, c, ref, name, custom_dir))


# ---------------------------------------------------------------- restore

@dataclass
class Restore:
    """What the start path needs to restore instead of starting fresh."""
    name: str
    image_dir: str
    ip: str | None
    criu: Criu

    def work_dir(self, bundle: str) -> str:
        return os.path.join(bundle, "criu-restore")

    def make_work_dir(self, bundle: str) -> str:
        """CRIU's restore.log goes here (failed() reads it)."""
        work = self.work_dir(bundle)
        os.makedirs(work, mode=0o700, exist_ok=True)
        return work

    def failed(self, bundle: str, message: str) -> SystemError_:
        detail = rtc.log_tail(self.work_dir(bundle), "restore.log") or message
        return SystemError_(f"restore from checkpoint {self.name} failed: {detail}")


async def restore(d: _Daemon, c: Container, ref: str, name: str | None, custom_dir: str | None, trace=None) -> None:
    """`start --checkpoint NAME`: the container resumes where it was checkpointed."""
    criu = await require_criu(d)
    path = find(d, c, ref, name, custom_dir)
    meta = read_meta(path)
    if meta.get("ContainerID") != c.id:
        raise InvalidParameter(f"checkpoint {name} was made for container {str(meta.get('ContainerID'))[:12]}, "
                               f"not for {c.id[:12]}")
    rt = _runtime(d, c)
    if meta.get("Runtime") and meta["Runtime"] != rt.name:
        raise InvalidParameter(f"checkpoint {name} was made with {meta['Runtime']}; this container runs {rt.name}")
    # the start emits Docker's `start` event; Docker has no restore event
    await d.lifecycle.start(c, trace, restore=Restore(name, os.path.join(path, IMAGES), meta.get("IPAddress") or None, criu))


def _event(d: _Daemon, c: Container, action: str) -> None:
    try:
        d.event(c, action)
    except Exception:   # events are best effort here
        log.debug("event %s for %s failed", action, c.id, exc_info=True)

