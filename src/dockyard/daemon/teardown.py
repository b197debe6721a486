"""Taking down what a start (and a create) made, written once.

The start steps' undos, the exit of a container, `rm` and the recovery after
a crash all use these pieces, each safe to call when its part was never made
or is already gone:

    supervisor   the runtime's state (`delete --force`) and a conmon of this container
    shm          a `--ipc shareable` container's /dev/shm
    rootfs       the overlay mount
    network      namespace, veths, addresses, published ports (bridge/none modes)
    bundle       the bundle dir, the exit file, the attach socket dir
    after_exit   all of the above a start made, for a container whose processes are gone
    files        what create made: volumes' references, the rootfs dirs, the container dir

Directories go to the trash (trash.py): renamed aside at once, deleted in
the background.
"""
from __future__ import annotations

import asyncio
import logging
import os
from typing import Protocol

from ..runtime import cgroups, conmon
from ..volumes import shm
from .container import Container
from .paths import Layout
from .trash import Trash

log = logging.getLogger("dockyard.teardown")


class _Networks(Protocol):
    def disconnect(self, cid: str) -> None: ...


class _Volumes(Protocol):
    def release(self, cid: str, remove_anonymous: bool = False) -> None: ...


class _Runtime(Protocol):
    async def delete_exited(self, cid: str, remove_cgroups) -> None: ...
    async def delete(self, cid: str, *, force: bool = False, check: bool = True) -> None: ...


class Teardown:
    def __init__(self, layout: Layout, runtime_for, networks: _Networks, volumes: _Volumes, cgroup_parent: str):
        self.layout = layout
        self.trash = Trash([layout.data_root, layout.exec_root])
        self.runtime_for = runtime_for          # Container -> its runtime
        self.networks = networks
        self.volumes = volumes
        self.cgroup_parent = cgroup_parent
        self.busy_cgroups: set[str] = set()     # exited containers whose cgroups could not go yet
        self._retries: set[asyncio.Task] = set()

    async def supervisor(self, c: Container, conmon_pid: int = 0) -> None:
        """A start cut short: the runtime's container and its conmon."""
        await self.runtime_for(c).delete(c.id, force=True, check=False)
        if conmon_pid and conmon.is_conmon_for(conmon_pid, c.id):
            try:
                os.kill(conmon_pid, 9)
            except ProcessLookupError:
                pass

    def shm(self, c: Container) -> None:
        shm.unmount(self.layout.exec_root, c.id)

    def rootfs(self, c: Container) -> None:
        self.layout.container(c.id).rootfs.unmount()

    async def network(self, c: Container) -> None:
        await asyncio.to_thread(self.networks.disconnect, c.id)

    def bundle(self, c: Container) -> None:
        paths = self.layout.container(c.id)
        self.trash.discard(paths.bundle)
        self.trash.discard(paths.attach_dir)    # conmon's <socket-dir>/<id[:12]>/attach
        try:
            os.unlink(paths.exit_file(c.id))
        except OSError:
            pass

    async def after_exit(self, c: Container) -> None:
        """Undo the start path of a container whose processes are gone:
        runtime state, cgroups, rootfs, /dev/shm, network, bundle."""
        parent = self.cgroup_parent
        await self.runtime_for(c).delete_exited(c.id, lambda: cgroups.remove_container(parent, c.id))
        self.rootfs(c)
        self.shm(c)
        try:
            if c.network.get("Mode") in ("bridge", "none"):
                await self.network(c)       # its records may not be forgotten on a full disk ...
        finally:
            self.bundle(c)                  # ... the rest goes all the same
            self._cgroups(c)
            c.conmon_pid = 0

    def _cgroups(self, c: Container) -> None:
        # the parent (<cgroup-parent> in each hierarchy) stays while the daemon runs:
        # removing it when the last container went cost each exit ten rmdirs and the
        # next start ten mkdirs; close() removes it
        if not cgroups.remove_container(self.cgroup_parent, c.id):
            # zombies the host's init has not reaped yet keep the cgroup busy
            self.busy_cgroups.add(c.id)
            t = asyncio.ensure_future(self._cgroups_later(c.id))
            self._retries.add(t)
            t.add_done_callback(self._retries.discard)

    async def _cgroups_later(self, cid: str, tries: int = 50) -> None:
        for _ in range(tries):
            await asyncio.sleep(0.1)
            if cgroups.remove_container(self.cgroup_parent, cid):
                self.busy_cgroups.discard(cid)
                return
        log.warning("cgroups of %s are still busy; the next daemon start removes them", cid[:12])

    async def files(self, c: Container, volumes: bool = False) -> None:
        """What create made (after after_exit, or for a container never started)."""
        self.volumes.release(c.id, remove_anonymous=volumes)
        paths = self.layout.container(c.id)
        paths.rootfs.remove(self.trash.discard)
        if c.network.get("Mode") in ("bridge", "none"):
            await self.network(c)
        self.trash.discard(paths.dir)
        self.trash.discard(paths.bundle)

    def close(self) -> None:
        """Daemon shutdown: one last try for busy cgroups; recovery sweeps the rest."""
        for t in list(self._retries):
            t.cancel()
        for cid in list(self.busy_cgroups):
            cgroups.remove_container(self.cgroup_parent, cid)
        cgroups.remove_parent(self.cgroup_parent)
        self.trash.close()
