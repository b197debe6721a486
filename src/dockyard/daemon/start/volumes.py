"""Step 2b: the container's mounts (named and anonymous volumes, binds,
tmpfs), after the rootfs is mounted so an empty new volume can be filled
with the image's content (copy-up). The OCI mounts go to the spec step.
Undo only unmounts a shareable /dev/shm: volume mounts outlive a start
(unmounted on volume rm), created bind sources stay (as with Docker)."""
from __future__ import annotations

import asyncio

from ...runtime import features
from ...volumes import mountspec, shm
from .context import StartContext

NAME = "volumes"


async def run(ctx: StartContext) -> None:
    d, c = ctx.daemon, ctx.container
    points = d.volumes.ensure(c, ctx.image_config, d.containers)
    if points:
        rro_error = None
        if mountspec.wants_rro(points):      # read-only mounts: recursively so where the kernel and runtime can
            rro_error = await asyncio.to_thread(features.rro_error, ctx.runtime.name, ctx.runtime.binary)
        ctx.mounts = await asyncio.to_thread(d.volumes.prepare, points, ctx.rootfs, rro_error)
    if (c.host_config.get("IpcMode") or "") == "shareable":
        source = shm.mount(d.config.exec_root, c.id, int(c.host_config.get("ShmSize") or 0))
        ctx.mounts = [m for m in ctx.mounts if m["destination"] != "/dev/shm"] + [shm.oci_mount(source)]


async def undo(ctx: StartContext) -> None:
    ctx.mounts = []
    ctx.daemon.teardown.shm(ctx.container)
