"""Volume routes: /volumes, /volumes/create, /volumes/prune, /volumes/{name}."""
from __future__ import annotations

import asyncio

from .. import filters
from ..daemon import volumes
from ..errors import InvalidParameter
from .server import Request, Response, json_response, route


@route("GET", "/volumes")
async def list_volumes(req: Request):
    return {"Volumes": req.daemon.volumes.list(filters.parse(req.param("filters"))), "Warnings": []}


@route("POST", "/volumes/create")
async def create(req: Request):
    body = await req.json(default={}) or {}
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON: expected an object")
    vol = volumes.create(req.daemon, body.get("Name") or None, body.get("Driver") or None,
                         body.get("DriverOpts") or {}, body.get("Labels") or {})
    return json_response(vol, 201)


@route("POST", "/volumes/prune")
async def prune(req: Request):
    f = filters.parse(req.param("filters"))
    if not req.api_at_least("1.42"):
        # moby's router: before 1.42 prune took every unused local volume, not only anonymous ones
        f["all"] = list(dict.fromkeys([*f.get("all", []), "true"]))
    return await asyncio.to_thread(volumes.prune, req.daemon, f)


@route("GET", "/volumes/{name}")
async def inspect(req: Request):
    return req.daemon.volumes.get(req.match["name"])


@route("DELETE", "/volumes/{name}")
async def remove(req: Request):
    await asyncio.to_thread(volumes.remove, req.daemon, req.match["name"], req.bool_param("force"))
    return Response(204)
