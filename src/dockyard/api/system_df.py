"""`GET /system/df` (the build routes are in build.py)."""
from __future__ import annotations

import asyncio

from ..daemon import diskusage
from ..errors import InvalidParameter
from . import container_views as views
from .server import Request, route

@route("GET", "/system/df")
async def system_df(req: Request):
    d = req.daemon
    types = req.params("type")
    for t in types:
        if t not in diskusage.TYPES:
            raise InvalidParameter(f"unknown object type: {t}")
    usage = await asyncio.to_thread(diskusage.collect, d, types or None)
    out = {}
    if "Images" in usage:
        out["LayersSize"] = usage["LayersSize"]
        out["Images"] = usage["Images"]
    if "Containers" in usage:
        cs = []
        for c in sorted(d.containers, key=lambda c: c.created, reverse=True):
            if c.id not in usage["Containers"]:
                continue                      # created while we counted
            s = views.summary(d, c)
            s["SizeRw"], s["SizeRootFs"] = usage["Containers"][c.id]
            cs.append(s)
        out["Containers"] = cs
    if "Volumes" in usage:
        out["Volumes"] = usage["Volumes"]
    if "BuildCache" in usage:
        out["BuildCache"] = usage["BuildCache"]
        if not req.api_at_least("1.42"):
            out["BuilderSize"] = 0
    return out

