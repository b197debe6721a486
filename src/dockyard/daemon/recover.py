"""Daemon start-up after a clean stop or a crash: lose nothing.

- running containers whose conmon still lives are re-adopted (watched
  again through a pidfd; logs/wait/stop/kill work as before);
- those that exited while we were down get the exit code conmon wrote,
  and what their start made is cleaned up;
- half-done operations are rolled back: a start that never reached
  `running` (bundle, mount, netns, runtime state, conmon), a remove that
  never finished;
- exec sessions are re-adopted (daemon/exec.py) or get the exit code
  their conmon wrote meanwhile;
- network objects of containers that are gone are reconciled away, and
  the re-adopted ones on user networks get their DNS server back;
- restart policies `always` / `unless-stopped` bring stopped containers back.
"""
from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Protocol

from ..runtime import cgroups, conmon
from .container import EXITED, PAUSED, REMOVING, RESTARTING, RUNNING

if TYPE_CHECKING:
    from ..network.manager import NetworkManager
    from .container import Container
    from .daemon import DaemonConfig
    from .exec import ExecManager
    from .lifecycle import Lifecycle
    from .lookup import ContainerStore
    from .monitor import ExitMonitor
    from .paths import Layout
    from .teardown import Teardown

log = logging.getLogger("dockyard.recover")


class _Daemon(Protocol):
    config: DaemonConfig
    containers: ContainerStore
    layout: Layout
    execs: ExecManager
    monitor: ExitMonitor
    lifecycle: Lifecycle
    teardown: Teardown
    networks: NetworkManager
    def save(self, c: Container) -> None: ...


async def recover(d: _Daemon) -> None:
    d.execs.recover()   # first: a container cleaned up below takes its execs' exit files along
    live: set[str] = set()
    adopted = []
    to_restart = []
    for c in d.containers.all():      # every namespace: the CRI's containers too
        st = c.state.status
        paths = d.layout.container(c.id)
        if st in (RUNNING, PAUSED):
            pid = c.conmon_pid or conmon.conmon_pid(paths)
            if pid and conmon.pid_alive(pid) and conmon.is_conmon_for(pid, c.id):
                live.add(c.id)
                adopted.append(c)
                d.monitor.watch(c.id, pid)
                if st == RUNNING:
                    _thaw_if_frozen(c)
                log.info("re-adopted %s (conmon %d)", c.short_id, pid)
                continue
            log.info("%s exited while the daemon was down", c.short_id)
            await d.lifecycle.exits.on_conmon_exit(c)
            if c.state.status == RESTARTING:
                live.add(c.id)
            continue
        if st == REMOVING:
            await _finish_remove(d, c)
            continue
        if st == RESTARTING:
            c.state.transition(EXITED)
            d.save(c)
        # not running: undo whatever a start cut short left behind
        await _undo_half_start(d, c)
        policy = c.restart_policy.get("Name")
        if policy == "always" or (policy == "unless-stopped" and not c.state.manually_stopped):
            if c.state.status == EXITED:
                to_restart.append(c)
    await asyncio.to_thread(d.networks.reconcile, live)
    for c in adopted:
        if c.namespace:      # a CRI container: its pod's network is not the engine's
            continue
        try:   # the embedded DNS server: new sockets in its namespace, its DNAT rules replaced
            await asyncio.to_thread(d.networks.start_resolver, c.id, list(c.host_config.get("Dns") or []), True)
        except Exception as e:
            log.warning("DNS server of %s not restored: %s", c.short_id, e)
    cgroups.sweep(d.config.cgroup_parent, live)
    for c in to_restart:
        try:
            await d.lifecycle.start(c, reset_restart=False)
        except Exception as e:   # a container that cannot start must not stop the daemon
            log.warning("restart policy: could not start %s: %s", c.short_id, e)


def _thaw_if_frozen(c) -> None:
    """A checkpoint freezes the cgroup before the dump; a daemon that died
    in between left a `running` container frozen. Thaw it."""
    from ..runtime.checkpoint import freezer_of, thaw
    path = freezer_of(c.state.pid) if c.state.pid else None
    if not path:
        return
    try:
        with open(path) as f:
            frozen = f.read().strip() in ("FROZEN", "FREEZING", "1")
    except OSError:
        return
    if frozen:
        log.info("thawing %s, frozen by a checkpoint cut short", c.short_id)
        thaw(path)


async def _undo_half_start(d: _Daemon, c) -> None:
    paths = d.layout.container(c.id)
    pid = conmon.conmon_pid(paths) if os.path.isdir(paths.bundle) else 0
    if os.path.isdir(paths.bundle) or os.path.ismount(paths.rootfs.merged) or c.network:
        log.info("rolling back a cut-short start of %s", c.short_id)
        await d.teardown.supervisor(c, pid)
        await d.teardown.after_exit(c)
        c.network = {}
        d.save(c)


async def _finish_remove(d: _Daemon, c) -> None:
    await _undo_half_start(d, c)
    await d.teardown.files(c)
    d.containers.remove(c)
