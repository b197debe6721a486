"""A small Engine API client: HTTP/1.1 over a unix socket, stdlib only.

Written on the raw socket rather than `http.client` because importing
`http.client` costs ~35 ms (it pulls in `email.parser` and `ssl`) and the
CLI must start fast; the hijacked attach stream also needs the raw socket
anyway. JSON goes through the C accelerator `_json` (`dumps`, `loads`
below): the `json` package imports `re`, ~2 ms of every CLI start; it is
imported only for what the accelerator does not cover.

One connection per request by default: unix-socket connects are cheap,
and it lets a caller hold a streaming response (wait, logs -f) while making
other calls. `run` does what the docker CLI does one call at a time with
fewer round trips: a request may leave its connection for the next one
(`keep_alive`, taken with `reuse`), and `send` puts a request on its way
without reading the answer, so several are in flight at once (`Pending`).
"""
from __future__ import annotations

from . import API_VERSION, __version__
from .endpoints import DEFAULT_HOST, Endpoint, EndpointError, connect, resolve

TYPE_CHECKING = False
if TYPE_CHECKING:     # annotations only: importing these costs the CLI's start time
    import socket
    from collections.abc import Iterator

__all__ = ["DEFAULT_HOST", "Client", "ConnectError", "DaemonError", "default_host"]

USER_AGENT = f"Dockyard-Client/{__version__} (linux)"
_CHUNK = 65536
_MAX_HEAD = 64 * 1024


class DaemonError(Exception):
    """The daemon answered with an error status (its `message` is shown)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class ConnectError(Exception):
    """The daemon could not be reached at all."""


def default_host() -> str:
    return resolve().host


# ---------------------------------------------------------------- encoding

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def quote(text: str, safe: bytes = b"") -> str:
    """Percent-encode (urllib.parse costs an import we can skip)."""
    out = []
    for byte in text.encode():
        if byte in _UNRESERVED or byte in safe:
            out.append(chr(byte))
        else:
            out.append("%%%02X" % byte)
    return "".join(out)


def encode_query(query: dict[str, object] | None) -> str:
    """Docker-style query: True → 1, None/False-y flags omitted by caller,
    lists repeat the key (e.g. several `changes=`)."""
    if not query:
        return ""
    parts = []
    for key, value in query.items():
        if value is None:
            continue
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if item is True:
                item = "1"
            elif item is False:
                item = "0"
            parts.append(f"{quote(key)}={quote(str(item))}")
    return "?" + "&".join(parts) if parts else ""


# ---------------------------------------------------------------- JSON

class _Unsupported(Exception):
    """A value the C encoder leaves to the json package (which says why)."""


def _unsupported(obj: object) -> object:
    raise _Unsupported


_encoder = None


def dumps(obj: object) -> str:
    """`json.dumps(obj, separators=(",", ":"))`: the same C encoder that
    json.dumps runs, made here without importing json."""
    global _encoder
    if isinstance(obj, str):
        from _json import encode_basestring_ascii
        return encode_basestring_ascii(obj)
    if _encoder is None:
        from _json import encode_basestring_ascii, make_encoder
        # json.JSONEncoder's defaults: check_circular, allow_nan, ensure_ascii
        _encoder = lambda o: make_encoder({}, _unsupported, encode_basestring_ascii, None,  # noqa: E731
                                          ":", ",", False, False, True)(o, 0)
    try:
        return "".join(_encoder(obj))
    except _Unsupported:
        import json
        return json.dumps(obj, separators=(",", ":"))


class _ScanContext:
    """What `_json.make_scanner` reads off json.JSONDecoder: its defaults."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


_scanner = None


def loads(raw: bytes | str) -> object:
    """`json.loads(raw)`; the json package only for what the accelerator
    does not take (and for the error of a malformed document)."""
    global _scanner
    try:
        text = raw.decode() if isinstance(raw, (bytes, bytearray)) else raw
        text = text.strip(" \t\n\r")
        if _scanner is None:
            from _json import make_scanner
            _scanner = make_scanner(_ScanContext())
        obj, end = _scanner(text, 0)
        if end == len(text):
            return obj
    except Exception:  # noqa: BLE001 — json.loads below says what is wrong
        pass
    import json
    return json.loads(raw)


# ---------------------------------------------------------------- responses

class _Reader:
    """Buffered reads from a socket, keeping what was read past a boundary."""

    def __init__(self, sock: socket.socket, initial: bytes = b""):
        self.sock = sock
        self.buf = bytearray(initial)

    def fill(self) -> bool:
        data = self.sock.recv(_CHUNK)
        if not data:
            return False
        self.buf += data
        return True

    def read_until(self, marker: bytes, limit: int) -> bytes:
        while True:
            at = self.buf.find(marker)
            if at >= 0:
                line = bytes(self.buf[:at])
                del self.buf[:at + len(marker)]
                return line
            if len(self.buf) > limit:
                raise ConnectError("malformed response from daemon: header too long")
            if not self.fill():
                raise ConnectError("daemon closed the connection unexpectedly")

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self.fill():
                raise ConnectError("daemon closed the connection mid-response")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_some(self, n: int = _CHUNK) -> bytes:
        if not self.buf:
            self.fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def take_buffered(self) -> bytes:
        data = bytes(self.buf)
        self.buf.clear()
        return data


class Response:
    """Status and headers are read at once; the body is read on demand,
    either whole (`read`, `json`) or as it arrives (`chunks`). `keep`, when
    given, takes the connection once the body has been read whole, if it
    can carry another request (else the connection is closed)."""

    def __init__(self, sock: socket.socket, method: str, keep=None):
        self.sock = sock
        self._keep = keep
        self._reader = _Reader(sock)
        status_line = self._reader.read_until(b"\r\n", _MAX_HEAD).decode("latin-1")
        try:
            _, code, *reason = status_line.split(" ", 2)
            self.status = int(code)
        except ValueError:
            raise ConnectError(f"malformed response from daemon: {status_line!r}") from None
        self.reason = reason[0] if reason else ""
        self._http11 = status_line.startswith("HTTP/1.1 ")
        self.headers: dict[str, str] = {}
        while True:
            line = self._reader.read_until(b"\r\n", _MAX_HEAD).decode("latin-1")
            if not line:
                break
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self._no_body = method == "HEAD" or self.status in (204, 304) or 100 <= self.status < 200
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        length = self.headers.get("content-length")
        self._remaining = int(length) if length is not None and not self._chunked else None
        self._done = self._no_body

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()

    def chunks(self) -> Iterator[bytes]:
        """The body, piece by piece as the daemon sends it."""
        try:
            if self._done:
                return
            if self._chunked:
                yield from self._chunked_body()
            elif self._remaining is not None:
                while self._remaining > 0:
                    data = self._reader.read_some(min(self._remaining, _CHUNK))
                    if not data:
                        raise ConnectError("daemon closed the connection mid-response")
                    self._remaining -= len(data)
                    yield data
            else:
                while True:
                    data = self._reader.read_some()
                    if not data:
                        break
                    yield data
            self._done = True
        finally:
            if self._done:
                self._finished()

    def _chunked_body(self) -> Iterator[bytes]:
        reader = self._reader
        while True:
            size_line = reader.read_until(b"\r\n", 1024).split(b";")[0].strip()
            size = int(size_line, 16)
            if size == 0:
                # trailers, then the blank line that ends the message
                while reader.read_until(b"\r\n", _MAX_HEAD):
                    pass
                return
            while size > 0:
                data = reader.read_some(min(size, _CHUNK))
                if not data:
                    raise ConnectError("daemon closed the connection mid-response")
                size -= len(data)
                yield data
            reader.read_exact(2)

    def read(self) -> bytes:
        return b"".join(self.chunks())

    def json(self) -> object:
        raw = self.read()
        return loads(raw) if raw.strip() else None

    def _finished(self) -> None:
        keep, self._keep = self._keep, None
        if (keep is not None and self._http11 and not self._reader.buf
                and "close" not in self.headers.get("connection", "").lower()
                and (self._no_body or self._chunked or self._remaining is not None)):
            keep(self.sock)
            self.sock = None
        else:
            self.close()

    def close(self) -> None:
        if self.sock is None:      # left to the client for its next request
            return
        try:
            self.sock.close()
        except OSError:
            pass


def error_message(resp: Response) -> str:
    """Docker's error bodies are `{"message": ...}`; fall back to the text."""
    raw = resp.read()
    try:
        message = loads(raw).get("message")
        if message:
            return message
    except (ValueError, AttributeError):
        pass
    text = raw.decode(errors="replace").strip()
    return text or f"{resp.status} {resp.reason}".strip()


# ---------------------------------------------------------------- client

class Pending:
    """A request sent, its answer not read yet: several can be in flight.
    On a reused connection the daemon may have closed meanwhile (before
    reading the request: it closes only between requests); then the
    request goes again on a new connection (`retry`)."""

    def __init__(self, sock: socket.socket, method: str, retry=None):
        self.sock = sock
        self.method = method
        self._retry = retry

    def response(self, keep=None) -> Response:
        """Read the answer's head; never raises on status."""
        try:
            if self._retry is not None:
                try:
                    gone = not self.sock.recv(1, _MSG_PEEK)
                except ConnectionResetError:
                    gone = True
                if gone:
                    self.sock.close()
                    return self._retry().response(keep)
            return Response(self.sock, self.method, keep)
        except BaseException:
            self.sock.close()
            raise

    def upgraded(self, path: str) -> tuple[socket.socket, bytes, str]:
        """The answer to a `Client.send_hijack`: after `101 UPGRADED` the
        socket is a raw stream. Returns (socket, bytes already read past
        the head, content type)."""
        resp = self.response()
        try:
            if resp.status >= 400:
                raise DaemonError(resp.status, error_message(resp))
            if resp.status not in (101, 200):
                raise ConnectError(f"unexpected response to POST {path}: {resp.status} {resp.reason}")
            return resp.sock, resp._reader.take_buffered(), resp.content_type
        except BaseException:
            resp.close()
            raise


_MSG_PEEK = 2     # socket.MSG_PEEK (Linux), without importing socket


class Client:
    def __init__(self, host: str | None = None, version: str = API_VERSION, endpoint: Endpoint | None = None):
        self.endpoint = endpoint or resolve(host)
        self.host = self.endpoint.host
        self.version = version
        self._idle: socket.socket | None = None   # left by a keep_alive call for the next reuse

    def _park(self, sock: socket.socket) -> None:
        if self._idle is not None:
            self._idle.close()
        self._idle = sock

    def close(self) -> None:
        """Close the connection a keep_alive call left, if any."""
        if self._idle is not None:
            self._idle.close()
            self._idle = None

    def _connect(self) -> socket.socket:
        try:
            return connect(self.endpoint)
        except EndpointError as e:
            raise ConnectError(str(e)) from None

    def _send(self, sock: socket.socket, method: str, path: str, query: dict | None,
              body: object, headers: dict[str, str] | None) -> None:
        target = f"/v{self.version}{quote(path, safe=b'/:@')}{encode_query(query)}"
        head = {"Host": "dockyard", "User-Agent": USER_AGENT}
        payload: bytes | None = None
        stream: object = None
        if isinstance(body, (dict, list)):
            payload = dumps(body).encode()
            head["Content-Type"] = "application/json"
        elif isinstance(body, (bytes, bytearray)):
            payload = bytes(body)
        elif body is not None:
            stream = body
        if headers:
            head.update(headers)
        if stream is not None:
            head["Transfer-Encoding"] = "chunked"
        elif method in ("POST", "PUT") or payload is not None:
            head["Content-Length"] = str(len(payload or b""))
        lines = [f"{method} {target} HTTP/1.1"] + [f"{k}: {v}" for k, v in head.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (payload or b""))
        if stream is not None:
            _send_chunked(sock, stream)

    def send(self, method: str, path: str, query: dict | None = None, body: object = None,
             headers: dict[str, str] | None = None, *, reuse: bool = False) -> Pending:
        """Send a request; its answer is read later (`Pending.response`).
        `reuse`: on the connection a keep_alive call left, if there is one
        (and the body can be sent again: not a stream)."""
        sock = None
        if reuse and isinstance(body, (dict, list, bytes, bytearray, type(None))):
            sock, self._idle = self._idle, None
        if sock is not None:
            try:
                self._send(sock, method, path, query, body, headers)
                return Pending(sock, method, lambda: self.send(method, path, query, body, headers))
            except (BrokenPipeError, ConnectionResetError):
                sock.close()      # closed by the daemon while idle: a new connection
        sock = self._connect()
        try:
            self._send(sock, method, path, query, body, headers)
        except BrokenPipeError:
            pass     # the daemon answered (likely an error) before taking the whole upload
        except BaseException:
            sock.close()
            raise
        return Pending(sock, method)

    def open(self, method: str, path: str, query: dict | None = None, body: object = None,
             headers: dict[str, str] | None = None, *, keep_alive: bool = False, reuse: bool = False) -> Response:
        """Send a request and read the response head; never raises on status.
        `keep_alive`: once the body is read whole, the connection is left
        for the next request that asks to `reuse` it."""
        keep = self._park if keep_alive and self.endpoint.tls is None else None
        return self.send(method, path, query, body, headers, reuse=reuse).response(keep)

    def call(self, method: str, path: str, query: dict | None = None, body: object = None,
             headers: dict[str, str] | None = None, *, keep_alive: bool = False, reuse: bool = False) -> Response:
        """Like `open`, but an error status raises DaemonError."""
        resp = self.open(method, path, query, body, headers, keep_alive=keep_alive, reuse=reuse)
        return self.checked(resp)

    @staticmethod
    def checked(resp: Response) -> Response:
        """The response, or DaemonError for an error status."""
        if resp.status >= 400:
            resp._keep = None
            message = error_message(resp)
            raise DaemonError(resp.status, message)
        return resp

    def json(self, method: str, path: str, query: dict | None = None, body: object = None, *,
             keep_alive: bool = False) -> object:
        return self.call(method, path, query, body, keep_alive=keep_alive).json()

    def get(self, path: str, query: dict | None = None) -> object:
        return self.json("GET", path, query)

    def post(self, path: str, query: dict | None = None, body: object = None, *, keep_alive: bool = False) -> object:
        return self.json("POST", path, query, body, keep_alive=keep_alive)

    def send_hijack(self, path: str, query: dict | None = None, body: dict | None = None, *,
                    reuse: bool = False) -> Pending:
        """POST with `Upgrade: tcp` (attach; exec start, whose options come
        as a JSON `body`), its answer read by `Pending.upgraded`."""
        headers = {"Connection": "Upgrade", "Upgrade": "tcp"}
        if body is None:
            headers["Content-Type"] = "text/plain"
        return self.send("POST", path, query, body, headers, reuse=reuse)

    def hijack(self, path: str, query: dict | None = None,
               body: dict | None = None) -> tuple[socket.socket, bytes, str]:
        """POST with `Upgrade: tcp`; after `101 UPGRADED` the socket is a raw
        stream. Returns (socket, bytes already read past the head, content type)."""
        return self.send_hijack(path, query, body).upgraded(path)


def _send_chunked(sock: socket.socket, stream) -> None:
    while True:
        data = stream.read(_CHUNK)
        if not data:
            break
        sock.sendall(b"%X\r\n" % len(data) + data + b"\r\n")
    sock.sendall(b"0\r\n\r\n")
