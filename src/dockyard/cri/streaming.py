"""The CRI streaming server: exec, attach and port-forward for the kubelet and crictl.

The CRI calls `Exec`, `Attach` and `PortForward` answer with a URL on this
server; the client then upgrades an HTTP/1.1 request on that URL and speaks
Kubernetes' remotecommand or portforward protocol over it. This is the server
half of kubelet's pkg/kubelet/cri/streaming (which containerd and CRI-O embed):

- `/exec/{token}`, `/attach/{token}`, `/portforward/{token}` (GET or POST), each
  token single-use and valid for one minute (kubelet's request cache: at most
  1000 in flight, 8 URL-safe characters); an unknown, used or expired token is
  404 `404 page not found`;
- SPDY/3.1 (`Upgrade: SPDY/3.1`, see spdy.py; crictl's and critest's default):
  `X-Stream-Protocol-Version` negotiation among v4.channel.k8s.io,
  v3.channel.k8s.io, v2.channel.k8s.io and channel.k8s.io (kubelet's handshake:
  the client's first choice the server knows; none: 403 with
  `X-Accepted-Stream-Protocol-Versions`), then one stream per `streamtype`
  header (error, stdin, stdout, stderr, resize) within the stream-creation
  timeout; port-forward (`portforward.k8s.io`) takes a data/error stream pair
  per `requestid` with a `port` header;
- WebSockets (`Upgrade: websocket`, crictl `-r websocket`) through wsproto, with
  the v5.channel.k8s.io, v4.channel.k8s.io and channel.k8s.io subprotocols: every
  message is one channel byte (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize)
  and data; v5 adds the close signal (255, channel) that ends stdin; port-forward
  over WebSockets is client-go's tunnelling (`SPDY/3.1+portforward.k8s.io`: the
  same SPDY session carried in binary messages), which crictl uses with
  `-r websocket` (kubelet's own channel-per-port WebSocket port-forward is not
  offered: no current client asks for it);
- the error stream ends every exec/attach: for v4 and v5 the JSON metav1.Status
  kubelet writes (Success; Failure/NonZeroExitCode with a details.causes
  ExitCode entry; Failure/InternalError with code 500), for older versions the
  failure's message as text;
- resize events are JSON `{"Width":..,"Height":..}` objects, handed to the
  backend through a `ResizeQueue`.

Threads, not asyncio: the gRPC CRI server (grpcio) that calls `get_*_url` is
thread-based, and the backend's exec/attach/port-forward are blocking calls on
pipes, ptys and sockets, so a thread per connection keeps them plain.
"""
from __future__ import annotations

import base64
import ctypes
import ctypes.util
import json
import logging
import os
import queue
import secrets
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import h11

from . import spdy

log = logging.getLogger("dockyard.cri.streaming")

# -- protocol names (k8s.io/apimachinery/pkg/util/remotecommand, portforward)
STREAM_PROTOCOL_V1 = "channel.k8s.io"
STREAM_PROTOCOL_V2 = "v2.channel.k8s.io"
STREAM_PROTOCOL_V3 = "v3.channel.k8s.io"
STREAM_PROTOCOL_V4 = "v4.channel.k8s.io"
STREAM_PROTOCOL_V5 = "v5.channel.k8s.io"
SPDY_REMOTECOMMAND_PROTOCOLS = [STREAM_PROTOCOL_V4, STREAM_PROTOCOL_V3, STREAM_PROTOCOL_V2, STREAM_PROTOCOL_V1]
WEBSOCKET_PROTOCOLS = [STREAM_PROTOCOL_V5, STREAM_PROTOCOL_V4, STREAM_PROTOCOL_V1]
PORTFORWARD_PROTOCOL = "portforward.k8s.io"
# client-go's port-forward over WebSockets (crictl port-forward -r websocket): the
# SPDY session itself, tunnelled in binary messages
WEBSOCKET_PORTFORWARD_PROTOCOLS = ["SPDY/3.1+" + PORTFORWARD_PROTOCOL]

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
WS_CLOSE_SIGNAL = 255           # v5: (255, channel) closes that channel
_CHANNEL_OF = {"stdin": STDIN, "stdout": STDOUT, "stderr": STDERR, "error": ERROR, "resize": RESIZE}

TOKEN_TTL = 60.0                # kubelet's cacheTTL
MAX_IN_FLIGHT = 1000            # kubelet's maxInFlight
TOKEN_LEN = 8
STREAM_CREATION_TIMEOUT = 30.0  # remotecommand.DefaultStreamCreationTimeout
STREAM_IDLE_TIMEOUT = 4 * 3600.0
HEADER_TIMEOUT = 30.0
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class StreamingError(Exception):
    """A refused Get{Exec,Attach,PortForward}: `code` is the gRPC status name the
    CRI server answers with (as kubelet's streaming server returns it)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class ExitCode(Exception):
    """Raised (or returned as an int) by a backend's exec for a process that exited non-zero."""

    def __init__(self, code: int):
        super().__init__(f"command terminated with exit code {code}")
        self.code = code


# ====================================================================== backend

@dataclass(frozen=True)
class TerminalSize:
    width: int
    height: int


class ResizeQueue:
    """TTY size changes from the client; `next()` is None once the client is gone."""

    def __init__(self) -> None:
        self._q: queue.Queue[TerminalSize | None] = queue.Queue()

    def put(self, size: TerminalSize | None) -> None:
        self._q.put(size)

    def next(self, timeout: float | None = None) -> TerminalSize | None:
        """The next size; None at the end (or, with a timeout, when none came)."""
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return None


class Reader(Protocol):
    def read(self, n: int = 65536) -> bytes: ...


class Writer(Protocol):
    def write(self, data: bytes) -> int: ...
    def close(self) -> None: ...


class StreamBackend(Protocol):
    """What the CRI server implements for the streaming server. Streams are
    None when the client did not ask for them; `stdin.read()` returns b"" at the
    end of input; `stdout`/`stderr` are closed by the server after the call."""

    def exec(self, container_id: str, cmd: list[str], tty: bool, stdin: Reader | None,
             stdout: Writer | None, stderr: Writer | None, resize: ResizeQueue | None) -> int:
        """Run cmd in the container to its end; its exit code (or raise ExitCode)."""

    def attach(self, container_id: str, tty: bool, stdin: Reader | None,
               stdout: Writer | None, stderr: Writer | None, resize: ResizeQueue | None) -> None:
        """Copy the container's streams until it exits or the client detaches."""

    def port_forward(self, pod_id: str, port: int, stream: "DataStream") -> None:
        """Connect stream to 127.0.0.1:port inside the pod's network namespace
        (`connect_in_netns` + `splice` do that) until either side is done."""


class DataStream(Protocol):
    def read(self, n: int = 65536) -> bytes: ...
    def write(self, data: bytes) -> int: ...
    def close(self) -> None: ...


# ====================================================================== netns helpers

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def connect_in_netns(netns_path: str | None, port: int, timeout: float = 10.0) -> socket.socket:
    """A TCP connection to 127.0.0.1:port in the network namespace at netns_path
    (None: ours). The socket is made by a short-lived thread that setns()es
    into the namespace (only that thread moves); a socket keeps its namespace,
    so it is then used from any thread. No subprocess."""
    if netns_path is None:
        return socket.create_connection(("127.0.0.1", port), timeout=timeout)
    box: dict[str, Any] = {}

    def make() -> None:
        try:
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns_path}: {os.strerror(err)}")
            finally:
                os.close(fd)
            box["sock"] = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except BaseException as e:   # handed to the caller's thread
            box["err"] = e
    t = threading.Thread(target=make, name="netns-socket", daemon=True)
    t.start()
    t.join()
    if "err" in box:
        raise box["err"]
    s: socket.socket = box["sock"]
    try:
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        s.settimeout(None)
    except BaseException:
        s.close()
        raise
    return s


def splice(stream: DataStream, sock: socket.socket) -> None:
    """Copy both ways between a port-forward stream and a socket until the
    socket's side is done (the server in the pod closed) — the client's end of
    input only half-closes the socket, as kubelet's runtimes do."""
    def to_sock() -> None:
        try:
            while True:
                data = stream.read(65536)
                if not data:
                    break
                sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    t = threading.Thread(target=to_sock, name="portforward-in", daemon=True)
    t.start()
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            stream.write(data)
    except OSError:
        pass
    finally:
        sock.close()


# ====================================================================== token cache

@dataclass(frozen=True)
class _Pending:
    kind: str          # "exec" | "attach" | "portforward"
    request: Any
    expires: float


class TokenCache:
    """kubelet's requestCache: single-use random tokens for cached requests."""

    def __init__(self, ttl: float = TOKEN_TTL, max_in_flight: int = MAX_IN_FLIGHT,
                 clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.max_in_flight = max_in_flight
        self.clock = clock
        self._tokens: OrderedDict[str, _Pending] = OrderedDict()
        self._lock = threading.Lock()

    def insert(self, kind: str, request: Any) -> str:
        with self._lock:
            now = self.clock()
            while self._tokens:
                tok, entry = next(iter(self._tokens.items()))
                if entry.expires >= now:
                    break
                del self._tokens[tok]
            if len(self._tokens) >= self.max_in_flight:
                raise StreamingError("ResourceExhausted", "maximum number of in-flight requests exceeded")
            for _ in range(10):
                token = base64.urlsafe_b64encode(secrets.token_bytes(6)).decode()[:TOKEN_LEN]
                if token not in self._tokens:
                    self._tokens[token] = _Pending(kind, request, now + self.ttl)
                    return token
            raise StreamingError("Internal", "failed to generate unique token")

    def consume(self, token: str) -> _Pending | None:
        with self._lock:
            entry = self._tokens.pop(token, None)
            if entry is None or self.clock() > entry.expires:
                return None
            return entry


# ====================================================================== status (metav1.Status)

def status_success() -> dict:
    return {"metadata": {}, "status": "Success"}


def status_exit_code(code: int) -> dict:
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command in container: "
                       f"exit status {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def status_internal(err: str) -> dict:
    return {"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {err}",
            "reason": "InternalError", "details": {"causes": [{"message": err}]}, "code": 500}


def _encode_status(status: dict, v4: bool) -> bytes:
    if v4:
        return json.dumps(status, separators=(",", ":")).encode()
    # channel.k8s.io .. v3: the failure's message as text, nothing on success
    return b"" if status["status"] == "Success" else status["message"].encode()


# ====================================================================== resize decoding

class _ResizeDecoder:
    """JSON TerminalSize objects, one after another (Go's json.Encoder writes
    each with a newline; a message may hold several or part of one)."""

    def __init__(self, q: ResizeQueue):
        self.q = q
        self.buf = ""
        self.dec = json.JSONDecoder()

    def feed(self, data: bytes) -> None:
        self.buf += data.decode("utf-8", "replace")
        while True:
            s = self.buf.lstrip()
            if not s:
                self.buf = ""
                return
            try:
                obj, end = self.dec.raw_decode(s)
            except ValueError:
                self.buf = s
                return
            self.buf = s[end:]
            if isinstance(obj, dict):
                try:
                    self.q.put(TerminalSize(int(obj.get("Width", 0)), int(obj.get("Height", 0))))
                except (TypeError, ValueError):
                    pass


def _pump_resize(stream: spdy.Stream, q: ResizeQueue) -> None:
    dec = _ResizeDecoder(q)
    while True:
        data = stream.read(4096)
        if not data:
            break
        dec.feed(data)
    q.put(None)


# ====================================================================== HTTP front

@dataclass
class _HttpRequest:
    method: str
    target: str
    headers: dict[str, list[str]]     # lowercase names

    def header(self, name: str) -> str:
        return ", ".join(self.headers.get(name.lower(), []))


class _Reply(Exception):
    """An HTTP error answer before any upgrade."""

    def __init__(self, status: int, body: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(body)
        self.status = status
        self.body = body
        self.headers = headers or []


def _values(header: list[str]) -> list[str]:
    return [p.strip() for v in header for p in v.split(",") if p.strip()]


class StreamServer:
    """The streaming HTTP server. `start()` binds `addr` (127.0.0.1 and a free
    port by default) and serves in threads until `stop()`."""

    def __init__(self, backend: StreamBackend, host: str = "127.0.0.1", port: int = 0,
                 base_url: str | None = None, token_ttl: float = TOKEN_TTL,
                 stream_creation_timeout: float = STREAM_CREATION_TIMEOUT,
                 stream_idle_timeout: float = STREAM_IDLE_TIMEOUT):
        self.backend = backend
        self.host = host
        self.port = port
        self._base_url = base_url
        self.cache = TokenCache(ttl=token_ttl)
        self.stream_creation_timeout = stream_creation_timeout
        self.stream_idle_timeout = stream_idle_timeout
        self._lsock: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._stopping = False

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((self.host, self.port))
            s.listen(128)
        except OSError:
            s.close()
            raise
        self._lsock = s
        self.port = s.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop, name="cri-streaming", daemon=True)
        self._accept_thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        if self._lsock is not None:
            try:
                self._lsock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._lsock.close()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout)
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(timeout)

    @property
    def base_url(self) -> str:
        if self._base_url:
            return self._base_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # ------------------------------------------------------------ CRI side
    def get_exec_url(self, req: Any) -> str:
        """For an ExecRequest (container_id, cmd, tty, stdin, stdout, stderr)."""
        if not req.container_id:
            raise StreamingError("InvalidArgument", "missing required container_id")
        if req.tty and req.stderr:
            raise StreamingError("InvalidArgument", "tty and stderr cannot both be true")
        if not (req.stdin or req.stdout or req.stderr):
            raise StreamingError("InvalidArgument", "one of stdin, stdout, or stderr must be set")
        return self._url("exec", req)

    def get_attach_url(self, req: Any) -> str:
        """For an AttachRequest (container_id, tty, stdin, stdout, stderr)."""
        if not req.container_id:
            raise StreamingError("InvalidArgument", "missing required container_id")
        if req.tty and req.stderr:
            raise StreamingError("InvalidArgument", "tty and stderr cannot both be true")
        if not (req.stdin or req.stdout or req.stderr):
            raise StreamingError("InvalidArgument", "one of stdin, stdout, and stderr must be set")
        return self._url("attach", req)

    def get_port_forward_url(self, req: Any) -> str:
        """For a PortForwardRequest (pod_sandbox_id, port)."""
        if not req.pod_sandbox_id:
            raise StreamingError("InvalidArgument", "missing required pod_sandbox_id")
        return self._url("portforward", req)

    def _url(self, kind: str, req: Any) -> str:
        return f"{self.base_url}/{kind}/{self.cache.insert(kind, req)}"

    # ------------------------------------------------------------ connections
    def _accept_loop(self) -> None:
        assert self._lsock is not None
        while not self._stopping:
            try:
                conn, _ = self._lsock.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve_conn, args=(conn,), name="cri-stream-conn", daemon=True)
            with self._lock:
                self._conns.add(conn)
                self._threads.add(t)
            t.start()

    def _serve_conn(self, sock: socket.socket) -> None:
        try:
            self._handle(sock)
        except Exception:
            log.exception("streaming connection")
        finally:
            try:
                sock.close()
            except OSError:
                pass
            with self._lock:
                self._conns.discard(sock)
                self._threads.discard(threading.current_thread())

    def _read_request(self, sock: socket.socket, h: h11.Connection) -> _HttpRequest | None:
        sock.settimeout(HEADER_TIMEOUT)
        while True:
            ev = h.next_event()
            if ev is h11.NEED_DATA:
                data = sock.recv(65536)
                h.receive_data(data)
                if not data and h.their_state is h11.IDLE:
                    return None
                continue
            if isinstance(ev, h11.Request):
                headers: dict[str, list[str]] = {}
                for k, v in ev.headers:
                    headers.setdefault(k.decode().lower(), []).append(v.decode("latin-1"))
                return _HttpRequest(ev.method.decode(), ev.target.decode("latin-1"), headers)
            if isinstance(ev, h11.ConnectionClosed):
                return None

    def _reply(self, sock: socket.socket, h: h11.Connection, status: int, body: str,
               headers: list[tuple[str, str]] | None = None) -> None:
        data = body.encode()
        hdrs = [("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff"),
                ("Content-Length", str(len(data))), ("Connection", "close")] + (headers or [])
        try:
            sock.sendall(h.send(h11.Response(status_code=status, headers=hdrs))
                         + h.send(h11.Data(data=data)) + h.send(h11.EndOfMessage()))
        except (OSError, h11.LocalProtocolError):
            pass

    def _handle(self, sock: socket.socket) -> None:
        h = h11.Connection(h11.SERVER)
        try:
            req = self._read_request(sock, h)
        except (h11.RemoteProtocolError, OSError):
            return
        if req is None:
            return
        path = req.target.split("?", 1)[0]
        parts = path.strip("/").split("/")
        kind = parts[0] if len(parts) == 2 else ""
        if kind not in ("exec", "attach", "portforward") or req.method not in ("GET", "POST"):
            if kind in ("exec", "attach", "portforward"):
                self._reply(sock, h, 405, "405 method not allowed\n")
            else:
                self._reply(sock, h, 404, "404 page not found\n")
            return
        pending = self.cache.consume(parts[1])
        if pending is None or pending.kind != kind:
            self._reply(sock, h, 404, "404 page not found\n")
            return
        try:
            upgrade = req.header("upgrade").lower()
            if "upgrade" not in req.header("connection").lower():
                raise _Reply(400, f"unable to upgrade: missing upgrade headers in request: {req.headers!r}")
            if upgrade == "websocket":
                ws = _WebSocketSession(self, sock, h, req)
                if kind == "portforward":
                    ws.handshake(WEBSOCKET_PORTFORWARD_PROTOCOLS)
                    tunnel = _WsTunnel(sock, ws.ws)

                    def tunnelled(on_stream: Callable[[spdy.Stream], bool]) -> spdy.Connection:
                        c = spdy.Connection(tunnel, on_stream, server=True)   # type: ignore[arg-type]
                        c.start()
                        return c
                    self._serve_portforward(tunnelled, pending.request)
                else:
                    ws.handshake(WEBSOCKET_PROTOCOLS)
                    ws.serve_remotecommand(pending)
                return
            if "spdy/3.1" not in upgrade:
                raise _Reply(400, f"unable to upgrade: missing upgrade headers in request: {req.headers!r}")
            if kind == "portforward":
                protocol = self._negotiate(req, [PORTFORWARD_PROTOCOL])
                self._serve_portforward(lambda on: self._upgrade_spdy(sock, h, protocol, on), pending.request)
            else:
                protocol = self._negotiate(req, SPDY_REMOTECOMMAND_PROTOCOLS)
                self._serve_spdy_remotecommand(sock, h, protocol, pending)
        except _Reply as r:
            self._reply(sock, h, r.status, r.body + "\n", r.headers)

    @staticmethod
    def _negotiate(req: _HttpRequest, server: list[str]) -> str:
        """httpstream.Handshake: the first of the client's protocols the server knows."""
        values = req.headers.get("x-stream-protocol-version")
        if not values:
            raise _Reply(400, "unable to upgrade: header X-Stream-Protocol-Version does not exist in request")
        client = _values(values)
        if not client:
            raise _Reply(400, f"unable to upgrade: header X-Stream-Protocol-Version contains {values}, "
                              "but no valid protocols")
        for p in client:
            if p in server:
                return p
        raise _Reply(403, f"unable to upgrade: unable to negotiate protocol: client supports {client}, "
                          f"server accepts {server}",
                     [("X-Accepted-Stream-Protocol-Versions", p) for p in server])

    def _upgrade_spdy(self, sock: socket.socket, h: h11.Connection, protocol: str,
                      on_stream: Callable[[spdy.Stream], bool]) -> spdy.Connection:
        head = h.send(h11.InformationalResponse(status_code=101, headers=[
            ("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"), ("X-Stream-Protocol-Version", protocol)]))
        initial, _closed = h.trailing_data
        sock.sendall(head)
        sock.settimeout(self.stream_idle_timeout)
        conn = spdy.Connection(sock, on_stream, server=True, initial=bytes(initial))
        conn.start()
        return conn

    # ------------------------------------------------------------ exec / attach over SPDY
    def _serve_spdy_remotecommand(self, sock: socket.socket, h: h11.Connection, protocol: str,
                                  pending: _Pending) -> None:
        req = pending.request
        tty, want_stdin, want_stdout = bool(req.tty), bool(req.stdin), bool(req.stdout)
        want_stderr = bool(req.stderr) and not tty
        resizing = protocol in (STREAM_PROTOCOL_V3, STREAM_PROTOCOL_V4)
        expected = 1 + want_stdin + want_stdout + want_stderr + (1 if tty and resizing else 0)
        streams: dict[str, spdy.Stream] = {}
        cond = threading.Condition()

        def on_stream(s: spdy.Stream) -> bool:
            st = s.header("streamtype")
            with cond:
                if st in _CHANNEL_OF and st not in streams:
                    streams[st] = s
                    cond.notify_all()
                else:
                    log.debug("unexpected stream type: %r", st)
            return True

        conn = self._upgrade_spdy(sock, h, protocol, on_stream)
        try:
            with cond:
                if not cond.wait_for(lambda: len(streams) >= expected or conn.closed,
                                     self.stream_creation_timeout) or len(streams) < expected:
                    log.info("timed out waiting for client to create streams")
                    return
            err_stream = streams.get("error")
            resize = None
            if tty and "resize" in streams:
                resize = ResizeQueue()
                threading.Thread(target=_pump_resize, args=(streams["resize"], resize),
                                 name="cri-resize", daemon=True).start()
            stdin = streams.get("stdin") if want_stdin else None
            if protocol == STREAM_PROTOCOL_V1 and stdin is not None:
                stdin.close()   # as 1.0 kubelets did
            status = self._run(pending, stdin, streams.get("stdout") if want_stdout else None,
                               streams.get("stderr") if want_stderr else None, resize)
            for name in ("stdout", "stderr"):
                if name in streams:
                    streams[name].close()
            if err_stream is not None:
                data = _encode_status(status, protocol == STREAM_PROTOCOL_V4)
                try:
                    if data:
                        err_stream.write(data)
                    err_stream.close()
                except OSError:
                    pass
            for s in streams.values():
                s.close()
        finally:
            conn.close()

    def _run(self, pending: _Pending, stdin: Reader | None, stdout: Writer | None, stderr: Writer | None,
             resize: ResizeQueue | None) -> dict:
        """Call the backend; the metav1.Status kubelet's ServeExec/ServeAttach writes."""
        req = pending.request
        try:
            if pending.kind == "exec":
                rc = self.backend.exec(req.container_id, list(req.cmd), bool(req.tty), stdin, stdout, stderr, resize)
            else:
                self.backend.attach(req.container_id, bool(req.tty), stdin, stdout, stderr, resize)
                rc = 0
        except ExitCode as e:
            rc = e.code
        except Exception as e:   # the client is told (InternalError), the daemon goes on
            log.warning("streaming %s in %s: %s", pending.kind, req.container_id, e)
            what = "executing command in" if pending.kind == "exec" else "attaching to"
            return status_internal(f"error {what} container: {e}")
        if rc:
            return status_exit_code(int(rc))
        return status_success()

    # ------------------------------------------------------------ port-forward over SPDY
    def _serve_portforward(self, upgrade: Callable[[Callable[[spdy.Stream], bool]], spdy.Connection],
                           req: Any) -> None:
        incoming: queue.Queue[spdy.Stream | None] = queue.Queue()

        def on_stream(s: spdy.Stream) -> bool:
            # httpStreamReceived: a valid port and stream type, or the stream is reset
            port = s.header("port")
            try:
                if not port or not 0 < int(port) < 65536:
                    return False
            except ValueError:
                return False
            if s.header("streamtype") not in ("error", "data"):
                return False
            incoming.put(s)
            return True

        conn = upgrade(on_stream)
        pairs: dict[str, dict[str, Any]] = {}
        workers: list[threading.Thread] = []
        pod_id = req.pod_sandbox_id

        def forward(pair: dict[str, Any]) -> None:
            data, err = pair["data"], pair["error"]
            port = int(data.header("port"))
            try:
                self.backend.port_forward(pod_id, port, data)
            except Exception as e:
                msg = f"error forwarding port {port} to pod {pod_id}, uid : {e}"
                log.info("%s", msg)
                try:
                    err.write(msg.encode())
                except OSError:
                    pass
            finally:
                data.close()
                err.close()

        def expire(rid: str, pair: dict[str, Any]) -> None:
            if pair.get("done"):
                return
            if pairs.get(rid) is pair:
                del pairs[rid]
            err = pair.get("error")
            if err is not None:
                try:
                    err.write(f"timed out waiting for streams for request {rid}".encode())
                    err.close()
                except OSError:
                    pass

        try:
            while not conn.closed:
                try:
                    s = incoming.get(timeout=0.5)
                except queue.Empty:
                    now = time.monotonic()
                    for rid, pair in list(pairs.items()):
                        if now > pair["deadline"]:
                            expire(rid, pair)
                    continue
                if s is None:
                    break
                rid = s.header("requestid")
                st = s.header("streamtype")
                if not rid:   # an old client: kubelet's best-effort request id from stream ids
                    rid = str(s.id if st == "error" else s.id - 2)
                pair = pairs.setdefault(rid, {"deadline": time.monotonic() + self.stream_creation_timeout})
                if st in pair:
                    msg = f"error processing stream for request {rid}: {st} stream already assigned"
                    if "error" in pair:
                        try:
                            pair["error"].write(msg.encode())
                        except OSError:
                            pass
                    continue
                pair[st] = s
                if "data" in pair and "error" in pair:
                    pair["done"] = True
                    del pairs[rid]
                    t = threading.Thread(target=forward, args=(pair,), name="cri-portforward", daemon=True)
                    workers.append(t)
                    t.start()
        finally:
            for t in workers:
                t.join(1.0)
            conn.close()


# ====================================================================== WebSockets

class _WsTunnel:
    """A byte stream in binary WebSocket messages (client-go's TunnelingConnection),
    socket-shaped for spdy.Connection: recv, sendall, shutdown."""

    def __init__(self, sock: socket.socket, ws: Any):
        self.sock = sock
        self.ws = ws
        self._lock = threading.Lock()
        self._pending = bytearray()
        self._eof = False

    def _send(self, event: Any) -> None:
        with self._lock:
            self.sock.sendall(self.ws.send(event))

    def recv(self, n: int) -> bytes:
        from wsproto.events import BytesMessage, CloseConnection, Ping
        while not self._pending and not self._eof:
            for ev in self.ws.events():
                if isinstance(ev, BytesMessage):
                    self._pending += ev.data
                elif isinstance(ev, Ping):
                    self._send(ev.response())
                elif isinstance(ev, CloseConnection):
                    try:
                        self._send(ev.response())
                    except Exception:   # we had sent our close already
                        pass
                    self._eof = True
            if self._pending or self._eof:
                break
            data = self.sock.recv(65536)
            if not data:
                self._eof = True
                break
            self.ws.receive_data(data)
        chunk = bytes(self._pending[:n])
        del self._pending[:n]
        return chunk

    def sendall(self, data: bytes) -> None:
        from wsproto.events import BytesMessage
        self._send(BytesMessage(data=data))

    def shutdown(self, how: int) -> None:
        from wsproto.events import CloseConnection
        if how == socket.SHUT_WR:
            try:
                self._send(CloseConnection(code=1000))
            except Exception:   # closed already
                pass
        else:
            self.sock.shutdown(how)


class _WsChannelWriter:
    def __init__(self, session: "_WebSocketSession", channel: int):
        self.session = session
        self.channel = channel

    def write(self, data: bytes) -> int:
        self.session.send_channel(self.channel, data)
        return len(data)

    def close(self) -> None:
        pass   # a websocket channel ends with the connection (clients read to the close)


class _WsStdin:
    """Channel 0's bytes for the backend; the reader waits (and so does TCP) while
    more than MAX_BUFFER bytes are unread, as the SPDY session does."""

    MAX_BUFFER = 1 << 20

    def __init__(self) -> None:
        self._buf = bytearray()
        self._eof = False
        self._cond = threading.Condition()

    def feed(self, data: bytes) -> None:
        with self._cond:
            while len(self._buf) > self.MAX_BUFFER and not self._eof:
                self._cond.wait()
            if not self._eof:
                self._buf += data
                self._cond.notify_all()

    def end(self) -> None:
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def read(self, n: int = 65536) -> bytes:
        with self._cond:
            while not self._buf and not self._eof:
                self._cond.wait()
            chunk = bytes(self._buf[:n])
            del self._buf[:n]
            self._cond.notify_all()
            return chunk


class _WebSocketSession:
    """wsstream's channel protocol over a wsproto connection (after our own
    RFC 6455 handshake on the h11-parsed request)."""

    def __init__(self, server: StreamServer, sock: socket.socket, h: h11.Connection, req: _HttpRequest):
        self.server = server
        self.sock = sock
        self.h = h
        self.req = req
        self.protocol = ""
        self.ws: Any = None
        self._wlock = threading.Lock()
        self.closed = threading.Event()
        self.stdin = _WsStdin()
        self.want_stdin = False
        self.resize: ResizeQueue | None = None
        self._resize_dec: _ResizeDecoder | None = None

    def handshake(self, supported: list[str]) -> None:
        import hashlib
        from wsproto.connection import Connection, ConnectionType

        key = self.req.header("sec-websocket-key").strip()
        if not key or self.req.header("sec-websocket-version").strip() != "13":
            raise _Reply(400, "unable to upgrade websocket connection: bad websocket handshake")
        offered = _values(self.req.headers.get("sec-websocket-protocol", []))
        if offered:
            chosen = next((p for p in offered if p in supported), None)
            if chosen is None:
                raise _Reply(403, f"unable to upgrade websocket connection: requested protocol(s) are not "
                                  f"supported: {offered}; supports {supported}")
            self.protocol = chosen
        accept = base64.b64encode(hashlib.sha1(key.encode() + _WS_GUID).digest()).decode()
        headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept)]
        if self.protocol:
            headers.append(("Sec-WebSocket-Protocol", self.protocol))
        head = self.h.send(h11.InformationalResponse(status_code=101, headers=headers))
        initial, _closed = self.h.trailing_data
        self.sock.sendall(head)
        self.sock.settimeout(self.server.stream_idle_timeout)
        self.ws = Connection(ConnectionType.SERVER)
        if initial:
            self.ws.receive_data(bytes(initial))

    def send_channel(self, channel: int, data: bytes) -> None:
        from wsproto.events import Message
        with self._wlock:
            if self.closed.is_set():
                raise BrokenPipeError("websocket closed")
            self.sock.sendall(self.ws.send(Message(data=bytes([channel]) + data)))

    def _send(self, event: Any) -> None:
        with self._wlock:
            try:
                self.sock.sendall(self.ws.send(event))
            except Exception:
                pass

    def _reader(self) -> None:
        from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
        partial = bytearray()
        try:
            self._handle_events(partial, BytesMessage, CloseConnection, Ping, TextMessage)
            while not self.closed.is_set():
                data = self.sock.recv(65536)
                if not data:
                    break
                self.ws.receive_data(data)
                self._handle_events(partial, BytesMessage, CloseConnection, Ping, TextMessage)
        except Exception as e:
            log.debug("websocket: %s", e)
        finally:
            self.closed.set()
            self.stdin.end()
            if self.resize is not None:
                self.resize.put(None)

    def _handle_events(self, partial: bytearray, BytesMessage: Any, CloseConnection: Any, Ping: Any,
                       TextMessage: Any) -> None:
        for ev in self.ws.events():
            if isinstance(ev, Ping):
                self._send(ev.response())
            elif isinstance(ev, CloseConnection):
                self._send(ev.response())
                self.closed.set()
                return
            elif isinstance(ev, BytesMessage):
                partial += ev.data
                if ev.message_finished:
                    self._on_message(bytes(partial))
                    partial.clear()
            elif isinstance(ev, TextMessage):
                pass   # base64.channel.k8s.io is not offered

    def _on_message(self, msg: bytes) -> None:
        if not msg:
            return
        ch, data = msg[0], msg[1:]
        if ch == WS_CLOSE_SIGNAL and self.protocol == STREAM_PROTOCOL_V5:
            if data and data[0] == STDIN:
                self.stdin.end()
            elif data and data[0] == RESIZE and self.resize is not None:
                self.resize.put(None)
        elif ch == STDIN and self.want_stdin:
            self.stdin.feed(data)
        elif ch == RESIZE and self._resize_dec is not None:
            self._resize_dec.feed(data)

    def serve_remotecommand(self, pending: _Pending) -> None:
        from wsproto.events import CloseConnection
        req = pending.request
        tty = bool(req.tty)
        want_stdout, want_stderr = bool(req.stdout), bool(req.stderr) and not tty
        self.want_stdin = bool(req.stdin)
        if tty:
            self.resize = ResizeQueue()
            self._resize_dec = _ResizeDecoder(self.resize)
        reader = threading.Thread(target=self._reader, name="cri-ws-reader", daemon=True)
        reader.start()
        try:
            # an empty message on the lowest writable channel tells the client it is set up
            first = STDOUT if want_stdout else STDERR if want_stderr else ERROR
            self.send_channel(first, b"")
            stdout = _WsChannelWriter(self, STDOUT) if want_stdout else None
            stderr = _WsChannelWriter(self, STDERR) if want_stderr else None
            stdin = self.stdin if req.stdin else None
            status = self.server._run(pending, stdin, stdout, stderr, self.resize)
            data = _encode_status(status, self.protocol in (STREAM_PROTOCOL_V4, STREAM_PROTOCOL_V5))
            if data:
                self.send_channel(ERROR, data)
        except OSError:
            pass
        finally:
            self.stdin.end()           # a reader waiting for room in stdin goes on reading
            self._send(CloseConnection(code=1000))
            self.closed.wait(2.0)      # the client's close reply (or its EOF)
            self.closed.set()
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            reader.join(2.0)
