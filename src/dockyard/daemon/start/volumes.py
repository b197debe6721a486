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
    volumes = ctx.daemon.volumes
    if not volumes.mounts(ctx.container.id):
        return
    ctx.mounts = await asyncio.to_thread(volumes.prepare, ctx.container.id, ctx.rootfs)


async def undo(ctx: StartContext) -> None:
    ctx.mounts = []
