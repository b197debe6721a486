"""Image routes of the Engine API: translate HTTP <-> ImageService (which
also tells `docker events`).

Progress-style replies (create, load) are JSON lines ending in "\\r\\n", as
Docker's streamformatter writes them; `docker load` reports failures inside
a 200 stream ({"errorDetail": ..., "error": ...}), which is what clients
expect from it. Uploads are spooled to a file under the image root first:
unpacking wants a seekable file, and the event loop must not wait on it.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any, AsyncIterator

from .. import filters as query_filters
from ..errors import DockyardError, InvalidParameter, NotImplementedYet
from ..images.changes import apply_changes
from ..images.reference import parse_normalized, repo_tag
from ..images.views import config_for_api
from .server import Request, Response, StreamResponse, route, version_tuple
from .tarstream import spool

log = logging.getLogger("dockyard.api")


def _images(req: Request):
    return req.daemon.images


def _line(obj: Any) -> bytes:
    return json.dumps(obj).encode() + b"\r\n"


async def _lines(objs: list[Any]) -> AsyncIterator[bytes]:
    for o in objs:
        yield _line(o)


# ---------------------------------------------------------------- create (import / pull)

@route("POST", "/images/create")
async def create_image(req: Request):
    from_image = req.param("fromImage")
    if from_image:
        return await _pull(req, from_image)
    src = req.param("fromSrc")
    if not src:
        raise InvalidParameter("fromImage or fromSrc is required")
    if src != "-":
        raise NotImplementedYet(f"importing from a URL is not supported yet ({src}): "
                                "download it and import the file")
    repo = req.param("repo") or ""
    ref = repo_tag(repo, req.param("tag")) if repo else None    # bad names fail before the upload
    changes = req.params("changes")
    apply_changes(changes)                                      # so do bad changes
    message = req.param("message") or f"Imported from {src}"
    path = await spool(req)
    try:
        image_id = await asyncio.to_thread(
            _images(req).import_rootfs, path, str(ref) if ref else None, changes, message)
    finally:
        os.unlink(path)
    return StreamResponse(_lines([{"status": image_id}]))


def _auth(req: Request):
    from ..images.registry import AuthConfig
    return AuthConfig.from_header(req.headers.get("x-registry-auth"))


def _insecure(req: Request) -> tuple[str, ...]:
    return req.daemon.config.insecure_registries


def progress_stream(work, cancel=None) -> StreamResponse:
    """Run `work(progress)` in a thread, streaming its messages as JSON lines;
    an error after the first line goes into the stream, as dockerd does."""
    from ..images.progress import Progress
    loop = asyncio.get_running_loop()
    q: asyncio.Queue = asyncio.Queue()

    def emit(msg: dict) -> None:
        loop.call_soon_threadsafe(q.put_nowait, _line(msg))

    def run() -> None:
        try:
            work(Progress(emit))
        except DockyardError as e:
            emit({"errorDetail": {"message": e.message}, "error": e.message})
        except Exception as e:    # a bug: say so in the stream, keep the daemon up
            log.exception("progress stream failed")
            emit({"errorDetail": {"message": str(e)}, "error": str(e)})
        finally:
            loop.call_soon_threadsafe(q.put_nowait, None)

    async def chunks() -> AsyncIterator[bytes]:
        from .tarstream import LONG_POOL
        fut = loop.run_in_executor(LONG_POOL, run)
        try:
            while True:
                item = await q.get()
                if item is None:
                    break
                yield item
        finally:
            if not fut.done() and cancel is not None:
                cancel()            # the client went away: stop transfers
            await asyncio.shield(fut)
    return StreamResponse(chunks())


async def _pull(req: Request, name: str) -> StreamResponse:
    ref = parse_normalized(name)
    tag = req.param("tag")
    if tag and ref.digest is None:
        ref = ref.with_tag(tag) if not tag.startswith("sha256:") else \
            parse_normalized(f"{ref.name}@{tag}")
    # no tag at all: `pull -a`; errors before the stream are HTTP errors
    cfg = req.daemon.config
    pull = await asyncio.to_thread(_images(req).pull, ref, _auth(req), req.param("platform"), _insecure(req),
                                   cfg.registry_mirrors, cfg.max_concurrent_downloads)
    return progress_stream(pull.run, pull.cancel)


@route("POST", "/images/{name:path}/push")
async def push_image(req: Request):
    ref = parse_normalized(req.match["name"])
    if ref.digest:
        raise InvalidParameter("cannot push a digest reference")
    tag = req.param("tag")
    if tag:
        ref = ref.with_tag(tag)
    push = await asyncio.to_thread(_images(req).push, ref, _auth(req), _insecure(req),
                                   req.daemon.config.max_concurrent_uploads)
    return progress_stream(push.run, push.cancel)


# ---------------------------------------------------------------- load

@route("POST", "/images/load")
async def load_images(req: Request):
    path = await spool(req)
    if not req.bool_param("quiet"):
        return _load_with_progress(req, path)       # the docker CLI on a terminal
    try:
        lines = await asyncio.to_thread(_images(req).load, path)
        out = [{"stream": line + "\n"} for line in lines]
    except DockyardError as e:
        out = [{"errorDetail": {"message": e.message}, "error": e.message}]
    finally:
        os.unlink(path)
    return StreamResponse(_lines(out))


def _load_with_progress(req: Request, path: str) -> StreamResponse:
    """"Loading layer" per layer, then the lines, like dockerd without ?quiet."""
    images = _images(req)

    def work(p) -> None:
        try:
            lines = images.load(path, lambda diff_id, size: p.update(
                diff_id.split(":", 1)[-1][:12], "Loading layer", size, size, force=True))
        finally:
            os.unlink(path)
        for line in lines:
            p.message({"stream": line + "\n"})
    return progress_stream(work)


# ---------------------------------------------------------------- list / inspect / history

@route("GET", "/images/json")
async def list_images(req: Request):
    filters = query_filters.parse(req.param("filters"))
    legacy = req.param("filter")            # API < 1.41: ?filter=<reference>
    if legacy:
        filters["reference"] = [legacy]
    images = _images(req).list(all=req.bool_param("all"), filters=filters)
    for img in images:
        if not req.api_at_least("1.43") and not img["RepoTags"] and not img["RepoDigests"]:
            img["RepoTags"], img["RepoDigests"] = ["<none>:<none>"], ["<none>@<none>"]
        if not req.api_at_least("1.44"):
            img["VirtualSize"] = img["Size"]
    return images


@route("GET", "/images/{name:path}/json")
async def inspect_image(req: Request):
    out = _images(req).inspect(req.match["name"])
    out["Config"] = config_for_api(out["Config"], version_tuple(req.version))
    if not req.api_at_least("1.44"):
        out["VirtualSize"] = out["Size"]
    return out


@route("GET", "/images/{name:path}/history")
async def image_history(req: Request):
    return _images(req).history(req.match["name"])


# ---------------------------------------------------------------- tag / remove / prune

@route("POST", "/images/{name:path}/tag")
async def tag_image(req: Request):
    _images(req).tag(req.match["name"], req.param("repo") or "", req.param("tag"))
    return Response(201)


@route("DELETE", "/images/{name:path}")
async def remove_image(req: Request):
    # deleting layer dirs can take seconds: keep it off the event loop
    return await asyncio.to_thread(_images(req).remove, req.match["name"],
                                   req.bool_param("force"), req.bool_param("noprune"))


@route("POST", "/images/prune")
async def prune_images(req: Request):
    return await asyncio.to_thread(_images(req).prune, query_filters.parse(req.param("filters")))


# ---------------------------------------------------------------- save / search

@route("GET", "/images/get")
async def save_images(req: Request):
    return await _save(req, req.params("names"))


@route("GET", "/images/{name:path}/get")
async def save_image(req: Request):
    return await _save(req, [req.match["name"]])


async def _save(req: Request, names: list[str]) -> StreamResponse:
    from .tarstream import thread_body
    if not names:
        raise InvalidParameter("no images given to save")
    write = await asyncio.to_thread(_images(req).save, names)   # unknown names: 404 here
    return StreamResponse(thread_body(write), content_type="application/x-tar")


@route("GET", "/images/search")
async def search_images(req: Request):
    from ..images.search import search
    term = req.param("term")
    if term is None:
        raise InvalidParameter("missing term")
    return await asyncio.to_thread(search, term, req.int_param("limit"),
                                   query_filters.parse(req.param("filters"), ("is-automated", "is-official", "stars")),
                                   _auth(req), _insecure(req))


@route("GET", "/distribution/{name:path}/json")
async def distribution_inspect(req: Request):
    from ..images.search import distribution_inspect as inspect
    ref = parse_normalized(req.match["name"])
    return await asyncio.to_thread(inspect, ref, _auth(req), _insecure(req))
