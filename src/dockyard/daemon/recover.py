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
- network objects of containers that are gone are reconciled away;
- restart policies `always` / `unless-stopped` bring stopped containers back.
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil

from ..runtime import conmon
from .container import CREATED, EXITED, PAUSED, REMOVING, RESTARTING, RUNNING, now_rfc3339
from .rootfs import RootFS

log = logging.getLogger("dockyard.recover")


async def recover(d) -> None:
    d.execs.recover()   # first: a container cleaned up below takes its execs' exit files along
    live: set[str] = set()
    to_restart = []
    for c in d.containers:
        st = c.state.status
        paths = d.paths(c)
        if st in (RUNNING, PAUSED):
            pid = c.conmon_pid or conmon.conmon_pid(paths)
            if pid and conmon.pid_alive(pid) and conmon.is_conmon_for(pid, c.id):
                live.add(c.id)
                d.monitor.watch(c.id, pid)
                if st == RUNNING:
                    _thaw_if_frozen(c)
                log.info("re-adopted %s (conmon %d)", c.short_id, pid)
                continue
            log.info("%s exited while the daemon was down", c.short_id)
            await d.handle_exit(c)
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
    _sweep_cgroups(d.config.cgroup_parent, live)
    for c in to_restart:
        try:
            await d.start(c, reset_restart=False)
        except Exception as e:   # a container that cannot start must not stop the daemon
            log.warning("restart policy: could not start %s: %s", c.short_id, e)


def _sweep_cgroups(parent: str, live: set[str]) -> None:
    """Empty container cgroups left by a crash (or still busy at the last
    shutdown): remove those of containers that are not running."""
    from .daemon import _cgroup_hierarchies, remove_cgroup_parent, remove_container_cgroups
    stale = set()
    for h in _cgroup_hierarchies():
        try:
            stale.update(n for n in os.listdir(os.path.join(h, parent))
                         if len(n) == 64 and n not in live and os.path.isdir(os.path.join(h, parent, n)))
        except OSError:
            continue
    for cid in stale:
        remove_container_cgroups(parent, cid)
    remove_cgroup_parent(parent)


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


async def _undo_half_start(d, c) -> None:
    paths = d.paths(c)
    pid = conmon.conmon_pid(paths) if os.path.isdir(paths.bundle) else 0
    merged = RootFS(d.config.data_root, c.id).merged
    if os.path.isdir(paths.bundle) or os.path.ismount(merged) or c.network:
        log.info("rolling back a cut-short start of %s", c.short_id)
        rt = d.runtimes.available.get(c.runtime) or d.runtimes.get(None)
        await rt.run("delete", "--force", c.id, check=False)
        if pid and conmon.is_conmon_for(pid, c.id):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        await d._cleanup_after_exit(c)
        c.network = {}
        d.save(c)


async def _finish_remove(d, c) -> None:
    await _undo_half_start(d, c)
    await d._remove_files(c)
    d.containers.remove(c)
