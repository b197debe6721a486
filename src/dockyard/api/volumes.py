"""Volume routes: /volumes, /volumes/create, /volumes/prune, /volumes/{name}."""
from __future__ import annotations

import asyncio

from ..daemon import resource_events
from ..errors import InvalidParameter
from ..volumes.service import volume_filters
from .server import Request, Response, json_response, route


def _filters(req: Request) -> dict[str, list[str]]:
    raw = req.json_param("filters") or {}
    if not isinstance(raw, dict):
        raise InvalidParameter("invalid filters: expected an object")
    return {k: list(v.keys()) if isinstance(v, dict) else list(v) for k, v in raw.items()}


@route("GET", "/volumes")
async def list_volumes(req: Request):
    vols = req.daemon.volumes
    keep = volume_filters(_filters(req), vols.users)
    return {"Volumes": [v for v in vols.list() if keep(v)], "Warnings": []}


@route("POST", "/volumes/create")
async def create(req: Request):
    body = await req.json(default={}) or {}
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON: expected an object")
    vol = req.daemon.volumes.create(body.get("Name") or None, body.get("Driver") or None,
                                    body.get("DriverOpts") or {}, body.get("Labels") or {})
    resource_events.volume(req.daemon, vol["Name"], "create", driver=vol.get("Driver", "local"))
    return json_response(vol, 201)


@route("POST", "/volumes/prune")
async def prune(req: Request):
    vols = req.daemon.volumes
    f = _filters(req)
    all_ = any(x.lower() in ("1", "true") for x in f.pop("all", []))
    if "dangling" in f:
        raise InvalidParameter("invalid filter 'dangling'")
    report = await asyncio.to_thread(vols.prune, volume_filters(f, vols.users), all_)
    for name in report.get("VolumesDeleted") or []:
        resource_events.volume(req.daemon, name, "destroy")
    req.daemon.events.emit("volume", "prune", "", {"reclaimed": report.get("SpaceReclaimed") or 0})
    return report


@route("GET", "/volumes/{name}")
async def inspect(req: Request):
    return req.daemon.volumes.get(req.match["name"])


@route("DELETE", "/volumes/{name}")
async def remove(req: Request):
    await asyncio.to_thread(req.daemon.volumes.remove, req.match["name"], req.bool_param("force"))
    resource_events.volume(req.daemon, req.match["name"], "destroy")
    return Response(204)
