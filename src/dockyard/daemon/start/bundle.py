"""Step 5: write the bundle (0700 dir, config.json) under the exec root."""
from __future__ import annotations

from ...runtime import bundle
from .. import podcontainers
from .context import StartContext

NAME = "bundle"


async def run(ctx: StartContext) -> None:
    ctx.paths = ctx.daemon.layout.container(ctx.container.id)
    if podcontainers.log_path(ctx.container):      # a CRI container logs where the kubelet reads
        ctx.paths.log_path = podcontainers.log_path(ctx.container)
    bundle.write(ctx.paths.bundle, ctx.spec)


async def undo(ctx: StartContext) -> None:
    ctx.daemon.teardown.bundle(ctx.container)
