"""The start path, one module per step, each owning its rollback:

    verify → mount → volumes → network → spec → bundle → supervise

Read top to bottom, this is what `POST /containers/{id}/start` does. If a
step fails, the steps already done are undone in reverse order, so a
failed start leaves the container `created` with nothing mounted, no
netns/veth, no bundle, no cgroup."""
from __future__ import annotations

import logging
import time

from . import bundle, mount, network, spec, supervise, verify, volumes
from .context import StartContext, Trace

log = logging.getLogger("dockyard.start")

STEPS = (verify, mount, volumes, network, spec, bundle, supervise)


async def run_steps(ctx: StartContext) -> None:
    done = []
    for step in STEPS:
        t0 = time.perf_counter()
        try:
            await step.run(ctx)
        except BaseException as e:
            ctx.trace.record(step.NAME, time.perf_counter() - t0, getattr(e, "message", None) or str(e) or type(e).__name__)
            for prev in reversed(done):
                t1 = time.perf_counter()
                try:
                    await prev.undo(ctx)
                except Exception:
                    log.exception("undo of %s failed for %s", prev.NAME, ctx.container.id)
                ctx.trace.record(f"undo:{prev.NAME}", time.perf_counter() - t1)
            raise
        ctx.trace.record(step.NAME, time.perf_counter() - t0)
        done.append(step)


__all__ = ["run_steps", "StartContext", "Trace", "STEPS"]
