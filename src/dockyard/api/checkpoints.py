"""Checkpoint routes: Docker's (served without any experimental switch) and
dockyard's export/import of a checkpointed container to another daemon.
`POST /containers/{id}/start?checkpoint=` is in containers.py."""
from __future__ import annotations

from ..daemon import checkpoint, checkpoint_io
from ..errors import InvalidParameter
from .server import Request, Response, StreamResponse, json_response, route


@route("POST", "/containers/{id}/checkpoints")
async def create(req: Request):
    c = req.daemon.containers.get(req.match["id"])
    body = await req.json(default=None) or {}
    if not isinstance(body, dict):
        raise InvalidParameter("checkpoint options must be a JSON object")
    # moby: an absent Exit is false, i.e. leave running (the docker CLI always sends it)
    await checkpoint.create(req.daemon, c, req.match["id"], body.get("CheckpointID"), body.get("CheckpointDir"),
                            exit_=bool(body.get("Exit", False)))
    return Response(201)


@route("GET", "/containers/{id}/checkpoints")
async def list_(req: Request):
    c = req.daemon.containers.get(req.match["id"])
    return checkpoint.list_(req.daemon, c, req.param("dir"))


@route("DELETE", "/containers/{id}/checkpoints/{checkpoint}")
async def delete(req: Request):
    c = req.daemon.containers.get(req.match["id"])
    checkpoint.delete(req.daemon, c, req.match["id"], req.match["checkpoint"], req.param("dir"))
    return Response(204)


@route("GET", "/containers/{id}/checkpoints/{checkpoint}/export")
async def export(req: Request):
    c = req.daemon.containers.get(req.match["id"])
    chunks = await checkpoint_io.export(req.daemon, c, req.match["id"], req.match["checkpoint"], req.param("dir"))
    return StreamResponse(chunks, content_type="application/x-tar")


@route("POST", "/containers/restore")
async def import_(req: Request):
    """Body: a tar from .../export. Creates the container (config, filesystem
    changes) and restores it, unless start=0."""
    c = await checkpoint_io.import_(req.daemon, req.stream(), req.param("name"), start=req.bool_param("start", True))
    return json_response({"Id": c.id, "Warnings": []}, 201)
