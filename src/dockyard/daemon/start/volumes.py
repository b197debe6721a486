"""Step 2b: the container's mounts (named and anonymous volumes, binds,
tmpfs), after the rootfs is mounted so an empty new volume can be filled
with the image's content (copy-up). The OCI mounts go to the spec step.
Nothing to undo: volume mounts outlive a start (unmounted on volume rm),
created bind sources stay (as with Docker)."""
from __future__ import annotations

import asyncio

from .context import StartContext

NAME = "volumes"


async def run(ctx: StartContext) -> None:
    d = ctx.daemon
    points = d.volumes.ensure(ctx.container, ctx.image_config, d.containers)
    if points:
        ctx.mounts = await asyncio.to_thread(d.volumes.prepare, points, ctx.rootfs)


async def undo(ctx: StartContext) -> None:
    ctx.mounts = []
