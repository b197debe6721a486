"""Container filesystem routes: archive (docker cp), export, changes
(docker diff) and commit. Translation only: the work is in
daemon/archive.py, daemon/fsview.py and daemon/commit.py."""
from __future__ import annotations

import asyncio
import json
import os

from ..daemon import archive, users
from ..daemon.fsview import clean, container_root, mount_sources, read_only_mounts
from ..errors import DockyardError, InvalidParameter
from ..inroot import Root
from .server import Request, Response, StreamResponse, route
from .tarstream import spool, thread_body


def _container(req: Request, key: str = "id"):
    return req.daemon.containers.get(req.match[key] if key == "id" else (req.param(key) or ""))


def _path(req: Request) -> str:
    p = req.param("path")
    if not p:
        raise InvalidParameter("path cannot be empty")
    return clean(p)


def _streamed(cm, root: Root | None, produce) -> StreamResponse:
    """A tar body produced inside an entered container_root context (and an
    open Root), both left when done."""
    body = thread_body(produce)

    async def chunks():
        try:
            async for chunk in body:
                yield chunk
        finally:
            if root is not None:
                root.close()
            await cm.__aexit__(None, None, None)
    return chunks()


@route("GET", "/containers/{id}/archive")
async def get_archive(req: Request):
    c = _container(req)
    path = _path(req)
    mounts = mount_sources(req.daemon, c)
    cm = container_root(req.daemon, c)
    root_dir = await cm.__aenter__()
    root = None
    try:
        root = Root(root_dir, mounts)
        doc = await asyncio.to_thread(archive.stat_path, root, path, req.match["id"])
    except BaseException:
        if root is not None:
            root.close()
        await cm.__aexit__(None, None, None)
        raise
    header = [("X-Docker-Container-Path-Stat", archive.stat_header(doc))]
    if req.method == "HEAD":
        root.close()
        await cm.__aexit__(None, None, None)
        return Response(200, b"", headers=header)
    chunks = _streamed(cm, root, lambda out: archive.get_tar(root, path, req.match["id"], out))
    req.daemon.event(c, "archive-path")       # moby's event for a copy out (`docker cp CTR:path`)
    return StreamResponse(chunks, content_type="application/x-tar", headers=header)


def _cp_owner(req: Request, c, root: str) -> tuple[int, int] | None:
    """cp -a into a container with a user: its files become that user's, as in
    moby (tarCopyOptions). moby looks the name up on the host; we use the
    container's /etc/passwd and /etc/group, as its processes do."""
    user = c.config.get("User")
    if not user:
        try:
            user = req.daemon.images.config(c.image).get("User")
        except DockyardError:   # the image may be gone: no user then
            user = ""
    if not user:
        return None
    uid, gid, _ = users.resolve(user, root)
    return uid, gid


@route("PUT", "/containers/{id}/archive")
async def put_archive(req: Request):
    c = _container(req)
    path = _path(req)
    mounts = mount_sources(req.daemon, c)
    read_only = read_only_mounts(req.daemon, c)
    tmp = await spool(req)
    try:
        async with container_root(req.daemon, c) as root_dir:
            copy_ids = req.bool_param("copyUIDGID")
            owner = _cp_owner(req, c, root_dir) if copy_ids else None
            await asyncio.to_thread(archive.put_path, root_dir, mounts, path, req.match["id"], read_only,
                                    bool(c.host_config.get("ReadonlyRootfs")), tmp,
                                    req.bool_param("noOverwriteDirNonDir"), copy_ids, owner)
    finally:
        os.unlink(tmp)
    req.daemon.event(c, "extract-to-dir")
    return Response(200, b"")


@route("GET", "/containers/{id}/export")
async def export(req: Request):
    c = _container(req)
    cm = container_root(req.daemon, c)
    root = await cm.__aenter__()
    req.daemon.event(c, "export")
    return StreamResponse(_streamed(cm, None, lambda out: archive.export_tar(root, out)),
                          content_type="application/x-tar")


@route("GET", "/containers/{id}/changes")
async def changes(req: Request):
    c = _container(req)
    upper = req.daemon.paths(c).rootfs.upper
    lowers = req.daemon.images.lower_dirs(c.image)
    return await asyncio.to_thread(archive.changes, upper, lowers)


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
