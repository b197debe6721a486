"""Step 2: mount the root filesystem (overlayfs over the image layers)."""
from __future__ import annotations

import asyncio

from ..rootfs import RootFS
from .context import StartContext

NAME = "mount"


async def run(ctx: StartContext) -> None:
    d, c = ctx.daemon, ctx.container
    lowers = d.images.lower_dirs(c.image)
    ctx.rootfs = RootFS(d.config.data_root, c.id).mount(lowers)


async def undo(ctx: StartContext) -> None:
    RootFS(ctx.daemon.config.data_root, ctx.container.id).unmount()
