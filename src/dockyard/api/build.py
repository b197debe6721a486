"""`POST /build` (moby's classic builder), `POST /build/prune`, `POST /build/cancel`.

A build's reply is moby's: nothing is sent until the builder says
something, so an error before its first message (a bad Dockerfile, a
malformed context) is an HTTP error; after it, the reply is a 200 JSON-lines
stream (`{"stream": ...}\\r\\n`, `{"aux": {"ID": ...}}\\r\\n`) and a failure is
its last line, `{"errorDetail": {"code": N, "message": ...}, "error": ...}`,
from which the docker CLI takes its exit code. With `q=1` the output is held
back: a success sends only the image ID, a failure what was held and then
the error (moby's notVerboseBuffer).

The body (a tar, compressed or not, or a bare Dockerfile) is unpacked as it
arrives (tarstream.BodyPipe: no spool file, receiving and unpacking
overlap) into a directory under the image store's tmp dir (wiped at every
start, so a crash leaves nothing for long); that directory is removed when
the build ends, however it ends. A client that goes
away (noticed without reading from it) cancels the build task: the builder
undoes its unfinished step.
"""
from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
import time
from concurrent.futures import Future
from contextlib import suppress
from typing import Any

from .. import filters
from ..daemon.build.context import unpack_context
from ..errors import DockyardError, InvalidParameter
from . import build_options
from .server import INTERNAL_ERROR, Request, Response, StreamResponse, route
from .tarstream import LONG_POOL, BodyPipe

log = logging.getLogger("dockyard.api")

_POLL = 0.25          # seconds between looks at the client while nothing is sent
_BUILD_PRUNE_FILTERS = ("until", "id", "parent", "type", "description", "inuse", "shared", "private")


def _line(obj: Any) -> bytes:
    return json.dumps(obj).encode() + b"\r\n"


def error_line(e: BaseException) -> bytes:
    """moby's streamformatter.FormatError: the code (a RUN's exit status) only when there is one."""
    message = e.message if isinstance(e, DockyardError) else (str(e) or INTERNAL_ERROR)
    detail: dict[str, Any] = {}
    code = getattr(e, "code", None)
    if code:
        detail["code"] = code
    detail["message"] = message
    return _line({"errorDetail": detail, "error": message})


class _End:
    def __init__(self, image_id: str | None, error: BaseException | None):
        self.image_id, self.error = image_id, error


class _ClientGone(ConnectionResetError):
    pass


class BuildRun:
    """One build: the task that unpacks the context and runs the builder,
    and the reply that relays its messages (an async iterator whose
    `aclose` cancels the task and waits for it)."""

    def __init__(self, req: Request, opts):
        self.req, self.opts = req, opts
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Future | None = None
        self.feeder: asyncio.Future | None = None
        self.pipe: BodyPipe
        self.held: list[bytes] = []        # q=1: what moby keeps in its notVerboseBuffer
        self.ended = False
        self._threads: list[Future] = []
        self._want_aux = req.api_at_least("1.30")
        self._t0 = 0.0

    # -- the work
    async def _thread(self, fn, *args):
        cf = LONG_POOL.submit(fn, *args)
        self._threads.append(cf)
        return await asyncio.wrap_future(cf)

    async def _emit(self, msg: dict) -> None:
        if "aux" in msg and not self._want_aux:
            return
        self.queue.put_nowait(_line(msg))

    async def _work(self) -> None:
        """The build, then its end queued once the context is gone (so a
        client that saw the end finds nothing left)."""
        ctx = None
        try:
            ctx = tempfile.mkdtemp(prefix="build-", dir=self.req.daemon.images.tmp_dir)
            end = _End(await self._build(ctx), None)
        except DockyardError as e:
            end = _End(None, e)
        except Exception as e:      # a bug: logged; the client gets the generic words or the stream's error line
            log.exception("build failed")
            end = _End(None, e)
        finally:
            self.pipe.abort()              # a thread still reading the body: it stops now
            for cf in self._threads:       # ... and one still writing into ctx (cancelled meanwhile)
                with suppress(BaseException):
                    await asyncio.wrap_future(cf)
            if ctx:
                with suppress(BaseException):
                    await asyncio.to_thread(shutil.rmtree, ctx, True)
        self.queue.put_nowait(end)

    async def _build(self, ctx: str) -> str:
        try:
            self.opts.dockerfile = await self._thread(unpack_context, self.pipe, ctx, self.opts.dockerfile)
        finally:
            self.pipe.close()              # the rest of the body (if any) is read and dropped
        log.debug("build context: %d bytes received and unpacked in %.0f ms", self.pipe.received,
                  (time.perf_counter() - self._t0) * 1000)
        return await self.req.daemon.builder.build(self.opts, ctx, self._emit)

    async def _next(self) -> Any:
        """The builder's next line or its end; the client polled meanwhile."""
        while True:
            try:
                return await asyncio.wait_for(self.queue.get(), _POLL)
            except asyncio.TimeoutError:
                if self.req.client_gone():
                    await self.aclose()
                    raise _ClientGone("client went away") from None

    # -- the reply
    async def start(self):
        """Unpack the body as it arrives and run the build; the reply once
        the builder said something (or failed before it could)."""
        self._t0 = time.perf_counter()
        self.pipe = BodyPipe()
        self.feeder = asyncio.ensure_future(self.pipe.feed(self.req.stream()))
        self.task = asyncio.ensure_future(self._work())
        try:
            while True:
                item = await self._next()
                if isinstance(item, _End):
                    self.ended = True
                    if item.error is None:
                        if self.opts.quiet:
                            self.held = [_line({"stream": f"{item.image_id}\n"})]
                        return await self._reply(StreamResponse(self))
                    if not self.held:            # nothing said yet: an HTTP error, as moby's
                        await self._stop_feeding()
                        if isinstance(item.error, DockyardError):
                            raise item.error
                        return Response(500, _line({"message": INTERNAL_ERROR}))
                    self.held.append(error_line(item.error))
                    return await self._reply(StreamResponse(self))
                self.held.append(item)
                if not self.opts.quiet:
                    return await self._reply(StreamResponse(self))
        except _ClientGone:
            return StreamResponse(_nothing())     # nobody to answer: the server finds the socket closed
        except BaseException:
            await self.aclose()
            raise

    async def _reply(self, stream: StreamResponse) -> StreamResponse:
        """The body is all read before the reply goes (the server reads
        requests one at a time): normally it is, the context being unpacked.
        (A body cut off has failed the unpack already; its error is not ours.)"""
        with suppress(Exception):
            await asyncio.shield(self.feeder)
        return stream

    async def _stop_feeding(self) -> None:
        """An error before the body's end: stop reading it (the server drops
        the rest, or closes the connection past its body limit)."""
        if not self.feeder.done():
            self.feeder.cancel()
        with suppress(BaseException):
            await self.feeder

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        if self.held:
            return self.held.pop(0)
        if self.ended:
            raise StopAsyncIteration
        item = await self._next()
        if isinstance(item, _End):
            self.ended = True
            if item.error is None:
                raise StopAsyncIteration
            return error_line(item.error)
        return item

    async def aclose(self) -> None:
        for t in (self.task, self.feeder):
            if t is not None and not t.done():
                t.cancel()
                with suppress(asyncio.CancelledError, Exception):
                    await t


async def _nothing():
    for chunk in ():
        yield chunk


@route("POST", "/build")
async def build(req: Request):
    opts = build_options.parse(req.query, req.api_at_least, req.headers.get("x-registry-config"))
    return await BuildRun(req, opts).start()


def _bytes_param(req: Request, name: str) -> int:
    """moby's parseBytesFromFormValue (strconv.Atoi's words)."""
    v = req.param(name) or ""
    if not v:
        return 0
    try:
        return int(v, 10)
    except ValueError:
        raise InvalidParameter(f'{name} is in bytes and expects an integer, got {v}: '
                               f'strconv.Atoi: parsing {json.dumps(v)}: invalid syntax') from None


@route("POST", "/build/prune")
async def build_prune(req: Request):
    flt = filters.parse(req.param("filters"), _BUILD_PRUNE_FILTERS)
    if req.api_at_least("1.48"):
        for name in ("reserved-space", "keep-storage", "max-used-space", "min-free-space"):
            _bytes_param(req, name)
    else:
        _bytes_param(req, "keep-storage")
    deleted, reclaimed = await req.daemon.builder.prune(req.bool_param("all"), flt)
    return {"CachesDeleted": list(deleted) or None, "SpaceReclaimed": reclaimed}


@route("POST", "/build/cancel")
async def build_cancel(req: Request):
    """moby answers 200 with no body for any ID: only BuildKit builds carry
    one, and a classic build is cancelled by closing its connection."""
    if not req.param("id"):
        raise InvalidParameter("build ID not provided")
    return Response(200, b"")
