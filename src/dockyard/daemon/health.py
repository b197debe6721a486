"""Healthchecks: Docker's probe loop, one asyncio task per running container
that has a healthcheck (no process between probes).

The rules are moby's (daemon/health.go): the first probe one interval after
start (the start interval while in the start period and still `starting`);
exit 0 is healthy and clears the failing streak; a failure in the start
period while `starting` is logged but not counted; `Retries` counted
failures make it unhealthy; a probe that outlives `Timeout` is killed and
logged with exit code -1. The last 5 results are kept, output cut at 4 KiB;
a `health_status: <status>` event marks each change. State.Health is saved
with the container, so a restarted daemon carries on from it.

Each probe runs the command in the container through the runtime's `exec`
(a process per probe, off the start path). As in Docker, a probe is an exec:
it emits exec_create, exec_start and exec_die (exec_events.py) before the
health_status event its result may cause.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from collections.abc import Callable

from ..errors import InvalidParameter
from ..runtime.runtimes import Runtime
from . import exec_events
from .container import PAUSED, RUNNING, Container
from .exec_events import EventFn
from .ids import new_id
from .lookup import ContainerStore
from .paths import Layout

log = logging.getLogger("dockyard.health")

STARTING, HEALTHY, UNHEALTHY, NONE = "starting", "healthy", "unhealthy", "none"
SECOND = 1_000_000_000
DEFAULT_INTERVAL = 30 * SECOND
DEFAULT_TIMEOUT = 30 * SECOND
DEFAULT_START_INTERVAL = 5 * SECOND
DEFAULT_RETRIES = 3
MAX_LOG = 5
MAX_OUTPUT = 4096
MIN_DURATION = 1_000_000          # 1ms, Docker's floor for every duration


def validate(hc: dict | None) -> None:
    """Docker's create-time checks (daemon/container.go)."""
    if not hc:
        return
    if not isinstance(hc, dict):
        raise InvalidParameter("invalid Healthcheck: must be an object")
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        v = hc.get(key) or 0
        if not isinstance(v, int):
            raise InvalidParameter(f"invalid Healthcheck {key}: must be an integer of nanoseconds")
        if v < 0:
            raise InvalidParameter(f"{key} in Healthcheck cannot be negative")
        if 0 < v < MIN_DURATION:
            raise InvalidParameter(f"{key} in Healthcheck cannot be less than 1ms")
    if (hc.get("Retries") or 0) < 0:
        raise InvalidParameter("Retries in Healthcheck cannot be negative")
    test = hc.get("Test")
    if test is not None and (not isinstance(test, list) or not all(isinstance(x, str) for x in test)):
        raise InvalidParameter("invalid Healthcheck Test: must be a list of strings")


def merge(container_hc: dict | None, image_hc: dict | None) -> dict | None:
    """The container's healthcheck over the image's, field by field (moby's
    merge at create, so inspect shows the result)."""
    if not image_hc:
        return container_hc
    hc = dict(image_hc)
    for k, v in (container_hc or {}).items():
        if v not in (None, 0, []):
            hc[k] = v
    return hc


PROBE_TYPES = ("CMD", "CMD-SHELL")


def effective(container_hc: dict | None, image_hc: dict | None = None) -> dict | None:
    """The healthcheck to run; None when there is none, it is disabled
    (Test ["NONE"]) or its Test does not start with CMD or CMD-SHELL (moby's
    getProbe: an unknown type is logged and nothing runs, no State.Health)."""
    hc = merge(container_hc, image_hc) or {}
    test = hc.get("Test") or []
    if not test or test[0] == "NONE":
        return None
    if test[0] not in PROBE_TYPES:
        log.warning("unknown healthcheck type %r (expected 'CMD'): not run", test[0])
        return None
    return hc


def probe_argv(hc: dict, shell: list[str] | None) -> list[str]:
    """moby's cmdProbe: Test[1:], after the container's Shell (default
    /bin/sh -c) for CMD-SHELL. The arguments are not joined: a CMD-SHELL
    with several gets the first as the script, the rest as $0, $1…"""
    test = hc["Test"]
    if test[0] == "CMD-SHELL":
        return list(shell or ["/bin/sh", "-c"]) + list(test[1:])
    return list(test[1:])


def _go_duration(ns: int) -> str:
    """Go's time.Duration.String(): 200ms, 1.5s, 1m30s, 2h0m0s."""
    if ns < SECOND:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size or unit == "ns":
                return f"{ns / size:.9f}".rstrip("0").rstrip(".") + unit
    h, rest = divmod(ns, 3600 * SECOND)
    m, rest = divmod(rest, 60 * SECOND)
    sec = f"{rest / SECOND:.9f}".rstrip("0").rstrip(".") + "s"
    return f"{h}h{m}m{sec}" if h else f"{m}m{sec}" if m else sec


def _local_rfc3339() -> str:
    t = time.time()
    lt = time.localtime(t)
    off = lt.tm_gmtoff
    tz = "Z" if off == 0 else f"{'+' if off > 0 else '-'}{abs(off) // 3600:02d}:{abs(off) % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", lt) + f".{int(t % 1 * 1e9):09d}" + tz


class HealthMonitor:
    def __init__(self, containers: ContainerStore, layout: Layout, runtime_for: Callable[[Container], Runtime],
                 save: Callable[[Container], None], event: EventFn):
        self.containers = containers
        self.layout = layout
        self.runtime_for = runtime_for      # Container -> its runtime
        self.save = save                    # the container's state, on disk
        self.event = event                  # a container event (Daemon.event)
        self._tasks: dict[str, asyncio.Task] = {}

    def config(self, c) -> dict | None:
        # the image's healthcheck was merged into Config at create: no image lookup at start
        return effective(c.config.get("Healthcheck"))

    def watch(self, c, *, fresh: bool = True) -> None:
        """Start probing `c` (at start: status `starting`, log cleared; after
        a daemon restart, `fresh=False` keeps what was saved)."""
        hc = self.config(c)
        if hc is None:
            return
        self.unwatch(c.id)
        if fresh or not c.state.health:
            c.state.health = {"Status": STARTING, "FailingStreak": 0, "Log": []}
            self.save(c)
        self._tasks[c.id] = asyncio.ensure_future(self._loop(c, hc))

    def unwatch(self, cid: str) -> None:
        t = self._tasks.pop(cid, None)
        if t is not None:
            t.cancel()

    def resume(self) -> None:
        """After a daemon restart: carry on with every running container."""
        for c in self.containers:
            if c.state.status in (RUNNING, PAUSED) and c.id not in self._tasks:
                self.watch(c, fresh=False)

    def close(self) -> None:
        for cid in list(self._tasks):
            self.unwatch(cid)

    # ------------------------------------------------------------ the loop
    def _next_interval(self, c, hc: dict) -> float:
        interval = hc.get("Interval") or DEFAULT_INTERVAL
        start_period = hc.get("StartPeriod") or 0
        if start_period and _since(c.state.started_at) < start_period / SECOND \
                and c.state.health.get("Status") == STARTING:
            interval = hc.get("StartInterval") or DEFAULT_START_INTERVAL
        return interval / SECOND

    async def _loop(self, c, hc: dict) -> None:
        try:
            while True:
                await asyncio.sleep(self._next_interval(c, hc))
                if c.state.status == PAUSED:
                    continue                         # a frozen container cannot answer
                if c.state.status != RUNNING:
                    return
                result = await self.probe(c, hc)
                if c.state.status != RUNNING or self._tasks.get(c.id) is not asyncio.current_task():
                    return
                self._record(c, hc, result)
        except asyncio.CancelledError:
            pass
        except Exception:                            # a bug here must not kill the daemon
            log.exception("healthcheck loop of %s failed", c.short_id)

    def _record(self, c, hc: dict, result: dict) -> None:
        h = c.state.health or {"Status": STARTING, "FailingStreak": 0, "Log": []}
        old = h.get("Status")
        if result["ExitCode"] == 0:
            h["FailingStreak"] = 0
            h["Status"] = HEALTHY
        else:
            count = True
            start_period = hc.get("StartPeriod") or 0
            if old == STARTING and start_period and result["_started"] - _unix(c.state.started_at) < start_period / SECOND:
                count = False
            if count:
                h["FailingStreak"] = h.get("FailingStreak", 0) + 1
                retries = hc.get("Retries") or DEFAULT_RETRIES
                if h["FailingStreak"] >= retries:
                    h["Status"] = UNHEALTHY
        result.pop("_started", None)
        h["Log"] = (h.get("Log") or [])[-(MAX_LOG - 1):] + [result]
        c.state.health = h
        self.save(c)
        if h["Status"] != old:
            self.event(c, "health_status: " + h["Status"])

    def _process_user(self, c) -> tuple[str | None, str | None]:
        """The probe runs as the container's process does (moby: the exec gets
        Config.User and WorkingDir); the runtime's exec takes env and
        capabilities from the spec but not these two: (cwd, "uid:gid")."""
        proc = _spec_process(self.layout.container(c.id).bundle)
        user = proc.get("user") or {}
        uid_gid = f"{user.get('uid', 0)}:{user.get('gid', 0)}" if user.get("uid") or user.get("gid") else None
        return proc.get("cwd") or None, uid_gid

    async def probe(self, c, hc: dict) -> dict:
        """Run the check once inside the container: {Start, End, ExitCode, Output}."""
        timeout_ns = hc.get("Timeout") or DEFAULT_TIMEOUT
        argv = probe_argv(hc, c.config.get("Shell"))
        rt = self.runtime_for(c)
        cwd, user = self._process_user(c)
        started, start = time.time(), _local_rfc3339()
        exec_id = new_id()
        exec_events.created(self.event, c, exec_id, argv)
        exec_events.started(self.event, c, exec_id, argv)
        status = 126                         # moby's code for an exec that failed to start
        try:
            res = await rt.exec_sync(c.id, argv, timeout=timeout_ns / SECOND, cwd=cwd, user=user,
                                     max_output=MAX_OUTPUT)
            # moby's limitedBuffer: the first MAX_OUTPUT bytes, "..." when more was said
            said = res.output.decode(errors="replace") + ("..." if res.truncated else "")
            if res.timed_out:
                code, output = -1, f"Health check exceeded timeout ({_go_duration(timeout_ns)})"
                if said:                     # moby keeps what the probe said before it was cut
                    output += ": " + said
            else:
                code, output = res.status, said
            status = _exec_status(res.status)
        except OSError as e:
            code, output = -1, f"failed to run the health check: {e}"
        except asyncio.CancelledError:
            status = 128 + signal.SIGKILL    # exec_sync killed the probe on its way out
            raise
        finally:
            # a probe cut short by `rm -f` ends silently: no event after destroy
            if self.containers.find(c.id) is not None:
                exec_events.died(self.event, c, exec_id, status)
        return {"Start": start, "End": _local_rfc3339(), "ExitCode": code,
                "Output": output, "_started": started}


def _spec_process(bundle: str) -> dict:
    try:
        with open(os.path.join(bundle, "config.json")) as f:
            return json.load(f).get("process") or {}
    except (OSError, ValueError):
        return {}


def _exec_status(status: int) -> int:
    """exec_die's exitCode: the process's status, 128+signal when killed
    (a timed-out probe is 137, as in Docker)."""
    return status if status >= 0 else 128 - status


def _unix(rfc: str) -> float:
    from .logs import parse_time
    try:
        return parse_time(rfc.replace("Z", "+00:00"))
    except ValueError:
        return 0.0


def _since(rfc: str) -> float:
    return time.time() - _unix(rfc)


def status(c) -> str:
    """For `ps` and the `health` filter: starting/healthy/unhealthy, or none."""
    h = getattr(c.state, "health", None)
    return h.get("Status", NONE) if h else NONE
