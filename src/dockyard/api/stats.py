"""Container stats and top: translate HTTP to daemon/stats.py and back."""
from __future__ import annotations

import json

from ..daemon import stats
from .server import Request, StreamResponse, json_response, route


@route("GET", "/containers/{id}/stats")
async def container_stats(req: Request):
    c = req.daemon.containers.get(req.match["id"])
    streaming = req.bool_param("stream", True)
    one_shot = req.bool_param("one-shot")
    if not streaming:
        async for s in stats.stream(c, one_shot=one_shot, count=1):
            return json_response(s)

    async def body():
        async for s in stats.stream(c, one_shot=one_shot):
            yield json.dumps(s).encode() + b"\n"
    return StreamResponse(body())


@route("GET", "/containers/{id}/top")
async def container_top(req: Request):
    c = req.daemon.containers.get(req.match["id"])
    return await stats.processes(req.daemon, c, req.param("ps_args") or "")
