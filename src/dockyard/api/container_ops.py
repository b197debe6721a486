"""Steering a running container: pause, unpause, update (HTTP <-> daemon/pause.py, daemon/update.py)."""
from __future__ import annotations

from ..daemon import pause as pausing
from ..daemon import update as updating
from ..errors import InvalidParameter
from .server import Request, Response, route


@route("POST", "/containers/{id}/pause")
async def pause(req: Request):
    await pausing.pause(req.daemon, req.daemon.containers.get(req.match["id"]))
    return Response(204)


@route("POST", "/containers/{id}/unpause")
async def unpause(req: Request):
    await pausing.unpause(req.daemon, req.daemon.containers.get(req.match["id"]))
    return Response(204)


@route("POST", "/containers/{id}/update")
async def update(req: Request):
    c = req.daemon.containers.get(req.match["id"])
    body = await req.json(default=None)
    if body is None:
        raise InvalidParameter("invalid JSON: the update is empty")
    warnings = await updating.update(req.daemon, c, body)
    return {"Warnings": warnings}
