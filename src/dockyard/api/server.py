"""HTTP/1.1 server for the Engine API: h11 on an asyncio unix socket.

h11 is a pure state machine (no I/O), so the I/O here stays small and we
can take a connection over for Docker's hijacked attach/exec streams
(see ../shared/notes/http-hijack.md for why not aiohttp).

Handlers are `async def handler(req) -> Response | StreamResponse | dict |
list | None`; a returned dict/list becomes a 200 JSON reply, None a 204.
Errors raised from `dockyard.errors` become `{"message": ...}` with their
class's status — the one place errors meet the wire.

What a client may send is bounded (`Limits`): a JSON body is read up to
`max_body` bytes and refused with 413 past it (upload routes read
`Request.stream()` and are not limited); a connection that sends nothing
for `idle_timeout` seconds, or whose request head is not complete within
`header_timeout` of its first byte, is closed (a connection is only timed
while we wait for the client, so hijacked streams and `logs -f`, `events`,
`wait`, `stats` replies are never idle); past `max_connections` a new
connection is answered once — `/_ping` as usual, anything else 503 — and
closed. Malformed HTTP gets 400 with a JSON body, not a dropped connection.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable

import h11

from .. import API_VERSION, MIN_API_VERSION, __version__
from ..errors import DockyardError, InvalidParameter, NotFound, Unavailable
from . import validate

log = logging.getLogger("dockyard.api")

SERVER_HEADER = f"Dockyard/{__version__} (linux)".encode()
_VERSION_PREFIX = re.compile(r"^/v(\d+\.\d+)(/.*)$")
_MAX_HEADER = 64 * 1024
# the body of a 500 (an unclassified error, i.e. a dockyard bug): Go's
# http.StatusText(500), never Python's exception text; the traceback is logged
INTERNAL_ERROR = "Internal Server Error"


@dataclass(frozen=True)
class Limits:
    """What one client may make the daemon hold (dockyardd's flags)."""
    max_body: int = 32 << 20          # bytes of a JSON request body
    header_timeout: float = 30.0      # seconds from a request's first byte to its complete head
    idle_timeout: float = 60.0        # seconds a connection may send nothing while we wait for it
    max_connections: int = 512        # connections served at once; more get /_ping or 503


def version_tuple(v: str) -> tuple[int, int]:
    major, _, minor = v.partition(".")
    return int(major), int(minor or 0)


# ---------------------------------------------------------------- routing

Handler = Callable[["Request"], Awaitable[Any]]
_ROUTES: list[tuple[str, re.Pattern, Handler]] = []
# a handler's JSON body schema from the API spec: Request.json() checks the body against it
_BODY_SCHEMAS: dict[Handler, dict] = {}


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Register a handler: `@route("POST", "/containers/{id}/start")`.

    `{name}` matches one path segment; `{name:path}` matches the rest
    (image names contain slashes)."""
    def to_regex(p: str) -> re.Pattern:
        p = re.sub(r"\{(\w+):path\}", r"(?P<\1>.+)", p)
        p = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", p)
        return re.compile("^" + p + "$")

    def deco(fn: Handler) -> Handler:
        _ROUTES.append((method, to_regex(pattern), fn))
        schema = validate.body_schema(method, pattern)
        if schema is not None:
            _BODY_SCHEMAS[fn] = schema
        return fn
    return deco


def _find(method: str, path: str) -> tuple[Handler, dict[str, str]]:
    allowed: set[str] = set()
    for m, rx, fn in _ROUTES:
        mt = rx.match(path)
        if mt:
            if m == method or (method == "HEAD" and m == "GET"):
                return fn, {k: urllib.parse.unquote(v) for k, v in mt.groupdict().items()}
            allowed.update(("GET", "HEAD") if m == "GET" else (m,))
    if allowed:
        raise _MethodNotAllowed(sorted(allowed))
    raise NotFound("page not found")


class _MethodNotAllowed(DockyardError):
    status = 405

    def __init__(self, allow: list[str]):
        super().__init__("method not allowed")
        self.allow = allow


class _BodyTooLarge(DockyardError):
    status = 413

    def __init__(self, limit: int):
        super().__init__(f"request body too large: more than {limit} bytes")


class _BadRequest(DockyardError):
    """Malformed HTTP (h11's RemoteProtocolError): answered, then the connection closes."""
    status = 400

    def __init__(self, e: h11.RemoteProtocolError):
        # h11 appends the offending bytes as a Python repr: keep its words only
        super().__init__("bad request: " + str(e).split(": bytearray(")[0])
        self.status = e.error_status_hint or 400


class _Timeout(Exception):
    """The client sent nothing in time: the connection is closed without an answer."""


# ---------------------------------------------------------------- replies

@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class StreamResponse:
    """A body produced over time (logs -f, wait, progress). The head is sent
    at once, before the first chunk — clients such as the docker CLI wait
    for it (e.g. `wait` before attaching)."""
    chunks: AsyncIterator[bytes]
    status: int = 200
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    # stop producing when the client hangs up, as dockerd's request context does
    # (`wait`: the docker CLI's `run -d` sends one and exits without reading it)
    end_on_close: bool = False


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(obj).encode() + b"\n")


class Hijacked:
    """Returned by `Request.hijack()` handlers: the connection is theirs now."""


# ---------------------------------------------------------------- request

class Request:
    def __init__(self, conn: "_Conn", ev: h11.Request, path: str, version: str,
                 query: dict[str, list[str]], daemon: Any):
        self._conn = conn
        self.method = ev.method.decode()
        self.path = path
        self.version = version
        self.query = query
        self.headers = {k.decode().lower(): v.decode("latin-1") for k, v in ev.headers}
        self.match: dict[str, str] = {}
        self.daemon = daemon
        self._body_done = False
        self.hijacked = False
        self.body_schema: dict | None = None   # set by the dispatcher from the route

    # -- query helpers (Docker accepts 1/true/True and 0/false/False)
    def param(self, name: str, default: str | None = None) -> str | None:
        v = self.query.get(name)
        return v[-1] if v else default

    def params(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def bool_param(self, name: str, default: bool = False) -> bool:
        v = self.param(name)
        if v is None or v == "":
            return default
        return v.lower() not in ("0", "false", "no")

    def int_param(self, name: str, default: int | None = None) -> int | None:
        v = self.param(name)
        if v is None or v == "":
            return default
        try:
            n = int(v)
        except ValueError:
            n = None
        if n is None or not -(1 << 63) <= n < (1 << 63):    # Go's strconv.Atoi: an int64
            raise InvalidParameter(f"invalid value for {name}: {v!r}")
        return n

    def json_param(self, name: str) -> Any:
        v = self.param(name)
        if not v:
            return None
        try:
            return json.loads(v)
        except ValueError as e:
            raise InvalidParameter(f"invalid {name} parameter: {e}") from None

    def api_at_least(self, v: str) -> bool:
        return version_tuple(self.version) >= version_tuple(v)

    def client_gone(self) -> bool:
        """True once the client closed or reset its connection (noticed
        without reading from it: a long reply that writes nothing for a
        while, such as a quiet build, polls this to stop its work)."""
        reader, writer = self._conn.reader, self._conn.writer
        return reader.at_eof() or reader.exception() is not None or writer.is_closing()

    # -- body
    async def stream(self) -> AsyncIterator[bytes]:
        """The request body, chunk by chunk (for large uploads: no size limit)."""
        while not self._body_done:
            ev = await self._conn.next_body_event()
            if isinstance(ev, h11.Data):
                yield bytes(ev.data)
            elif isinstance(ev, h11.EndOfMessage):
                self._body_done = True
            else:
                raise InvalidParameter("malformed request body")

    async def body(self) -> bytes:
        """The whole body of a JSON route: 413 past the connection's limit,
        told by Content-Length before reading or by counting as it comes."""
        limit = self._conn.limits.max_body
        length = self.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            self._conn.close_after_reply = True
            raise _BodyTooLarge(limit)
        parts, size = [], 0
        async for c in self.stream():
            size += len(c)
            if size > limit:
                self._conn.close_after_reply = True
                raise _BodyTooLarge(limit)
            parts.append(c)
        return b"".join(parts)

    async def discard(self) -> bool:
        """Read what the handler left of the body, keeping none of it; False
        (close the connection) past the body limit."""
        size = 0
        async for c in self.stream():
            size += len(c)
            if size > self._conn.limits.max_body:
                return False
        return True

    async def json(self, default: Any = None) -> Any:
        """The body decoded, and type-checked against the route's schema in
        the API spec (api/validate.py): a known field of the wrong type is a
        400 in Go's words, as moby's decoder answers; field names are matched
        case-insensitively as Go does and handed on in their canonical spelling."""
        raw = await self.body()
        if not raw.strip():
            return default
        try:
            value = json.loads(raw)
        except ValueError as e:
            raise InvalidParameter(f"invalid JSON: {e}") from None
        if self.body_schema is not None:
            value = validate.check_body(value, self.body_schema)
        return value

    # -- hijack
    async def hijack(self, content_type: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
        """Take the connection over (attach, exec start).

        Returns (reader, writer, already_read). As moby: a client that sent
        an `Upgrade` header gets `101 UPGRADED` with the stream's content
        type; one that did not gets a bare 200 head saying raw-stream (the
        stream is framed all the same without a TTY). The head is written
        raw: h11 is done with this connection, and would refuse a 101 to a
        request without `Connection: Upgrade`, which moby does not ask for."""
        await self.body()
        self.hijacked = True
        c = self._conn
        if "upgrade" in self.headers:
            head = (b"HTTP/1.1 101 UPGRADED\r\nContent-Type: " + content_type.encode() +
                    b"\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n")
        else:
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
        c.writer.write(head + b"Api-Version: " + API_VERSION.encode() + b"\r\nServer: " + SERVER_HEADER +
                       b"\r\n\r\n")
        await c.writer.drain()
        # what the client sent after its request (stdin typed early) is in h11's buffer
        return c.reader, c.writer, bytes(c.h11.trailing_data[0])


# ---------------------------------------------------------------- connection

class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limits: Limits):
        self.reader = reader
        self.writer = writer
        self.limits = limits
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEADER)
        self.close_after_reply = False
        self.bad_request: _BadRequest | None = None
        self.timed_out = False     # a read timed out: close without an answer

    async def _read(self, deadline: float) -> bytes:
        left = deadline - asyncio.get_running_loop().time()
        try:
            if left <= 0:
                raise asyncio.TimeoutError()
            return await asyncio.wait_for(self.reader.read(65536), left)
        except asyncio.TimeoutError:
            self.timed_out = True
            raise _Timeout() from None

    async def next_request(self) -> Any:
        """The next request head (or ConnectionClosed): `idle_timeout` for
        its first byte, then `header_timeout` for the rest of the head."""
        loop = asyncio.get_running_loop()
        started = bool(self.h11.trailing_data[0])
        deadline = loop.time() + (self.limits.header_timeout if started else self.limits.idle_timeout)
        while True:
            ev = self.h11.next_event()
            if ev is not h11.NEED_DATA:
                return ev
            data = await self._read(deadline)
            if data and not started:
                started = True
                deadline = loop.time() + self.limits.header_timeout
            self.h11.receive_data(data)

    async def next_body_event(self) -> Any:
        """The next piece of a request body: `idle_timeout` for each read.
        A malformed body (bad chunked encoding) is remembered, so that the
        reply is a 400 whatever the handler made of the error."""
        while True:
            try:
                ev = self.h11.next_event()
            except h11.RemoteProtocolError as e:
                self.bad_request = _BadRequest(e)
                raise self.bad_request from None
            if ev is not h11.NEED_DATA:
                return ev
            data = await self._read(asyncio.get_running_loop().time() + self.limits.idle_timeout)
            self.h11.receive_data(data)

    def send(self, ev: Any) -> None:
        data = self.h11.send(ev)
        if data:
            self.writer.write(data)


# True once the daemon found a working CRIU (api/system.py learns it on /_ping):
# the docker CLI offers `docker checkpoint` only when this header says true.
experimental = False


def _common_headers(content_type: str) -> list[tuple[bytes, bytes]]:
    return [(b"Content-Type", content_type.encode()),
            (b"Api-Version", API_VERSION.encode()),
            (b"Docker-Experimental", b"true" if experimental else b"false"),
            (b"Ostype", b"linux"),
            (b"Server", SERVER_HEADER)]


def _split_version(path: str) -> tuple[str, str]:
    m = _VERSION_PREFIX.match(path)
    if not m:
        return API_VERSION, path
    v = m.group(1)
    if version_tuple(v) < version_tuple(MIN_API_VERSION):
        raise InvalidParameter(
            f"client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, "
            "please upgrade your client to a newer version")
    if version_tuple(v) > version_tuple(API_VERSION):
        raise InvalidParameter(f"client version {v} is too new. Maximum supported API version is {API_VERSION}")
    return v, m.group(2)


def _is_ping(ev: h11.Request) -> bool:
    path = ev.target.decode("latin-1").partition("?")[0]
    m = _VERSION_PREFIX.match(path)
    return (m.group(2) if m else path) == "/_ping" and ev.method in (b"GET", b"HEAD")


class ApiServer:
    def __init__(self, daemon: Any, limits: Limits | None = None):
        self.daemon = daemon
        self.limits = limits or Limits()
        self._servers: list[asyncio.AbstractServer] = []
        self._conns: set[asyncio.Task] = set()
        self._served = 0      # connections counted against max_connections

    async def listen_unix(self, path: str, mode: int = 0o660, gid: int = -1) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        old = os.umask(0o117)  # socket born 0660: no window where others can connect
        try:
            # backlog as Go's listeners (somaxconn): a burst of clients waits to be accepted, not EAGAIN
            self._servers.append(await asyncio.start_unix_server(self._serve, path=path, limit=1 << 20,
                                                                 backlog=socket.SOMAXCONN))
        finally:
            os.umask(old)
        os.chown(path, -1, gid)   # -G/--group (-1: the daemon's own)
        os.chmod(path, mode)

    async def serve_socket(self, sock: socket.socket, ssl_ctx: Any = None) -> None:
        """Serve on a listening socket made elsewhere (TCP, or one systemd
        passed); over TLS when `ssl_ctx` is given (the handshake happens
        before any request is read: a client without an acceptable
        certificate never reaches a handler)."""
        if sock.family == socket.AF_UNIX:
            srv = await asyncio.start_unix_server(self._serve, sock=sock, limit=1 << 20)
        elif ssl_ctx is None:
            srv = await asyncio.start_server(self._serve, sock=sock, limit=1 << 20)
        else:
            # TLS by tlsconn.py, not asyncio's: hijacked streams need half-close
            from .tlsconn import TLSServerProtocol
            loop = asyncio.get_running_loop()

            def app() -> asyncio.Protocol:
                reader = asyncio.StreamReader(limit=1 << 20)
                return asyncio.StreamReaderProtocol(reader, self._serve)
            srv = await loop.create_server(
                lambda: TLSServerProtocol(ssl_ctx, app, self.limits.header_timeout), sock=sock)
        self._servers.append(srv)

    async def close(self) -> None:
        for srv in self._servers:
            srv.close()
        for t in list(self._conns):
            t.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._conns.add(task)
        conn = _Conn(reader, writer, self.limits)
        counted = self._served < self.limits.max_connections
        if counted:
            self._served += 1
        try:
            while True:
                try:
                    ev = await conn.next_request()
                except h11.RemoteProtocolError as e:
                    await self._reply_error(conn, _BadRequest(e))
                    break
                if isinstance(ev, h11.ConnectionClosed) or ev is h11.PAUSED:
                    break
                if not isinstance(ev, h11.Request):
                    break
                if not counted:
                    # over the cap: one answer (/_ping as usual, else 503), then the connection goes
                    conn.close_after_reply = True
                    if not _is_ping(ev):
                        await self._reply_error(conn, Unavailable(
                            f"too many connections: the daemon serves at most {self.limits.max_connections} "
                            "at once; try again later"))
                        break
                keep = await self._dispatch(conn, ev)
                if not keep:
                    return  # hijacked: handler owns and closed the socket
                if conn.close_after_reply:
                    break
                if conn.h11.our_state is h11.MUST_CLOSE or conn.h11.their_state is h11.MUST_CLOSE:
                    break
                try:
                    conn.h11.start_next_cycle()
                except h11.LocalProtocolError:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, h11.RemoteProtocolError, _BadRequest, _Timeout):
            pass   # (_BadRequest here: a malformed body met while a reply streams; nothing more to say)
        except asyncio.CancelledError:
            pass
        finally:
            if counted:
                self._served -= 1
            self._conns.discard(task)
            try:
                writer.close()
            except Exception:
                pass

    @staticmethod
    async def _stream_while_connected(conn: _Conn, chunks: AsyncIterator[bytes]) -> None:
        """Send chunks until they end or the client closes its side (EOF): a
        reply nobody reads must not hold the connection (and a slot of
        max_connections) for as long as it would take. Bytes the client sends
        meanwhile are kept for its next request."""
        async def pump() -> None:
            async for chunk in chunks:
                if chunk:
                    conn.send(h11.Data(data=chunk))
                    await conn.writer.drain()
        sending = asyncio.ensure_future(pump())
        reading = asyncio.ensure_future(conn.reader.read(65536))
        try:
            while True:
                done, _ = await asyncio.wait({sending, reading}, return_when=asyncio.FIRST_COMPLETED)
                if sending in done:
                    sending.result()
                    return
                data = reading.result()
                if not data:
                    raise ConnectionResetError("the client closed the connection")
                conn.h11.receive_data(data)
                reading = asyncio.ensure_future(conn.reader.read(65536))
        finally:
            for t in (sending, reading):
                if not t.done():
                    t.cancel()
            await asyncio.gather(sending, reading, return_exceptions=True)

    async def _reply_error(self, conn: _Conn, e: DockyardError) -> None:
        """An answer outside any handler (malformed request, over the cap);
        the connection closes after it."""
        if conn.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        conn.close_after_reply = True
        body = json.dumps({"message": e.message}).encode() + b"\n"
        await self._reply(conn, None, Response(e.status, body))

    async def _dispatch(self, conn: _Conn, ev: h11.Request) -> bool:
        target = ev.target.decode("latin-1")
        raw_path, _, qs = target.partition("?")
        req = None
        try:
            version, path = _split_version(urllib.parse.unquote(raw_path))
            query = urllib.parse.parse_qs(qs, keep_blank_values=True)
            req = Request(conn, ev, path, version, query, self.daemon)
            handler, req.match = _find(req.method, path)
            req.body_schema = _BODY_SCHEMAS.get(handler)
            validate.check_params(req.match, req.query)
            result = await handler(req)
            if req.hijacked:
                return False
        except _Timeout:
            return False     # the client stopped sending its body: close without an answer
        except DockyardError as e:
            result = Response(e.status, json.dumps({"message": e.message}).encode() + b"\n")
            if e.status == 304:
                result = Response(304)
            if isinstance(e, _MethodNotAllowed):
                result.headers.append(("Allow", ", ".join(e.allow)))
        except Exception:  # a bug: the traceback goes to the daemon log, the client gets the generic words
            if conn.bad_request is None:
                log.exception("handler failed for %s %s", ev.method.decode(), target)
            result = Response(500, json.dumps({"message": INTERNAL_ERROR}).encode() + b"\n")
        if (req is not None and req.hijacked) or conn.timed_out:
            return False
        if conn.bad_request is not None:   # whatever the handler made of a malformed body
            conn.close_after_reply = True
            e = conn.bad_request
            result = Response(e.status, json.dumps({"message": e.message}).encode() + b"\n")
        # drain any unread body so the connection stays in sync
        elif req is not None and not req._body_done and not conn.close_after_reply:
            try:
                if not await req.discard():
                    conn.close_after_reply = True
            except _BadRequest as e:
                conn.close_after_reply = True
                result = Response(e.status, json.dumps({"message": e.message}).encode() + b"\n")
            except (DockyardError, _Timeout):
                return False
        await self._reply(conn, ev, result)
        return True

    async def _reply(self, conn: _Conn, ev: h11.Request | None, result: Any) -> None:
        head_only = ev is not None and ev.method == b"HEAD"
        if result is None:
            result = Response(204)
        elif isinstance(result, (dict, list)):
            result = json_response(result)
        if isinstance(result, StreamResponse):
            headers = _common_headers(result.content_type) + [(k.encode(), v.encode()) for k, v in result.headers]
            try:         # the body's aclose runs even when the head cannot be sent
                conn.send(h11.Response(status_code=result.status, headers=headers))
                await conn.writer.drain()
                if result.end_on_close:
                    await self._stream_while_connected(conn, result.chunks)
                else:
                    async for chunk in result.chunks:
                        if chunk:
                            conn.send(h11.Data(data=chunk))
                            await conn.writer.drain()
            finally:
                aclose = getattr(result.chunks, "aclose", None)
                if aclose:
                    await aclose()
            conn.send(h11.EndOfMessage())
            await conn.writer.drain()
            return
        headers = _common_headers(result.content_type) + [(k.encode(), v.encode()) for k, v in result.headers]
        if conn.close_after_reply:
            headers.append((b"Connection", b"close"))
        if result.status not in (204, 304):
            headers.append((b"Content-Length", str(len(result.body)).encode()))
        conn.send(h11.Response(status_code=result.status, headers=headers))
        if result.body and not head_only and result.status not in (204, 304):
            conn.send(h11.Data(data=result.body))
        conn.send(h11.EndOfMessage())
        await conn.writer.drain()
