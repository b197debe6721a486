"""Container filesystem routes: archive (docker cp), export, changes
(docker diff) and commit. Translation only: the work is in
daemon/containerfs.py (over archive.py, fsview.py, inroot.py) and
daemon/commit.py."""
from __future__ import annotations

import json
import os

from ..daemon import archive, containerfs
from ..daemon.fsview import clean
from ..errors import InvalidParameter
from .server import Request, Response, StreamResponse, route
from .tarstream import spool, thread_body


def _container(req: Request, key: str = "id"):
    return req.daemon.containers.get(req.match[key] if key == "id" else (req.param(key) or ""))


def _path(req: Request) -> str:
    p = req.param("path")
    if not p:
        raise InvalidParameter("path cannot be empty")
    return clean(p)


def _tar(out: containerfs.TarOut, headers=()) -> StreamResponse:
    body = thread_body(out.produce)

    async def chunks():
        try:
            async for chunk in body:
                yield chunk
        finally:
            await out.close()
    return StreamResponse(chunks(), content_type="application/x-tar", headers=list(headers))


@route("GET", "/containers/{id}/archive")
async def get_archive(req: Request):
    head = req.method == "HEAD"
    out = await containerfs.archive_path(req.daemon, _container(req), _path(req), req.match["id"], head=head)
    header = [("X-Docker-Container-Path-Stat", archive.stat_header(out.stat))]
    if head:
        return Response(200, b"", headers=header)
    return _tar(out, header)


@route("PUT", "/containers/{id}/archive")
async def put_archive(req: Request):
    c = _container(req)
    path = _path(req)
    tmp = await spool(req)
    try:
        await containerfs.extract(req.daemon, c, path, req.match["id"], tmp,
                                  req.bool_param("noOverwriteDirNonDir"), req.bool_param("copyUIDGID"))
    finally:
        os.unlink(tmp)
    return Response(200, b"")


@route("GET", "/containers/{id}/export")
async def export(req: Request):
    return _tar(await containerfs.export(req.daemon, _container(req)))


@route("GET", "/containers/{id}/changes")
async def changes(req: Request):
    return await containerfs.changes(req.daemon, _container(req))


@route("POST", "/commit")
async def commit(req: Request):
    from ..daemon.commit import commit as do_commit
    c = _container(req, "container")
    body = await req.json(default=None)
    image_id = await do_commit(req.daemon, c, repo=req.param("repo") or "", tag=req.param("tag") or "",
                               comment=req.param("comment") or "", author=req.param("author") or "",
                               changes=req.params("changes"), pause=req.bool_param("pause", True),
                               config=body if isinstance(body, dict) else None)
    return Response(201, (json.dumps({"Id": image_id}) + "\n").encode())
