"""The CRI's gRPC server on its own unix socket, in the daemon's event loop
(grpc.aio): its socket bound with the daemon, grpc itself (its import, its
threads: ~10 MB of the daemon's RSS, issue 16) started at the first
connection; stopped at shutdown, the socket file removed. Errors meet the wire here, once: `dockyard.errors` classes become
the gRPC status codes containerd returns for the same case."""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
from typing import TYPE_CHECKING, Any, Awaitable, Callable

if TYPE_CHECKING:
    import grpc

from ..errors import Conflict, DockyardError, InvalidParameter, NotFound, NotImplementedYet, Unavailable

log = logging.getLogger("dockyard.cri")

DEFAULT_SOCKET = "unix:///run/dockyard/cri.sock"


def status_code(e: DockyardError) -> grpc.StatusCode:
    import grpc
    from ..daemon.podcontainers import ExecTimedOut
    from ..daemon.pods import NameReserved
    if isinstance(e, NameReserved):     # a pod's (or container's) metadata already reserved
        return grpc.StatusCode.ALREADY_EXISTS
    if isinstance(e, ExecTimedOut):
        return grpc.StatusCode.DEADLINE_EXCEEDED
    if isinstance(e, NotFound):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(e, InvalidParameter):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(e, Conflict):       # a state that forbids the call (running, stopped, in use)
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(e, NotImplementedYet):
        return grpc.StatusCode.UNIMPLEMENTED
    if isinstance(e, Unavailable):
        return grpc.StatusCode.UNAVAILABLE
    return grpc.StatusCode.UNKNOWN     # the host or a registry failed us: containerd's Unknown


def rpc(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """A servicer method: DockyardError -> its status code and message; any
    other exception is a dockyard bug: logged with its traceback, INTERNAL."""
    @functools.wraps(fn)
    async def wrapper(self, request, context: grpc.aio.ServicerContext):
        try:
            return await fn(self, request, context)
        except Exception as e:
            await _abort(fn.__name__, e, context)
    return wrapper


async def _abort(name: str, e: Exception, context: grpc.aio.ServicerContext) -> None:
    """The call failed with e: its status on the wire (an AbortError passes)."""
    import grpc
    if isinstance(e, grpc.aio.AbortError):
        raise e
    if isinstance(e, DockyardError):
        code = status_code(e)
        log.debug("CRI %s: %s: %s", name, code.name, e.message)
        await context.abort(code, e.message)
    log.exception("CRI %s failed", name, exc_info=e)
    await context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")


STREAM_BATCH = 100       # items per message of the Stream* calls (each well under the 16 MiB message limit)


def stream_rpc(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A server-streaming servicer method (an async generator): errors meet
    the wire as in `rpc`."""
    @functools.wraps(fn)
    async def wrapper(self, request, context: grpc.aio.ServicerContext):
        try:
            async for msg in fn(self, request, context):
                yield msg
        except Exception as e:
            await _abort(fn.__name__, e, context)
    return wrapper


def batches(items: list, size: int = STREAM_BATCH):
    """The Stream* calls' lists: each item once, at least one per message,
    none sent for no items (the stream just ends)."""
    for i in range(0, len(items), size):
        yield items[i:i + size]


def unimplemented(servicer_base: type) -> type:
    """A class decorator: every method of the generated servicer `servicer_base`
    that the class does not define answers UNIMPLEMENTED with the call's name
    (the generated default does too, but logs a NotImplementedError traceback)."""
    def fill(cls: type) -> type:
        for name, member in vars(servicer_base).items():
            if name.startswith("_") or not callable(member) or getattr(cls, name) is not member:
                continue        # served by the class or a mixin of it
            setattr(cls, name, _unimplemented(name))
        return cls
    return fill


def _unimplemented(name: str):
    async def method(self, request, context: grpc.aio.ServicerContext):
        import grpc
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"dockyard does not implement {name} yet")
    method.__name__ = name
    return method


def socket_path(address: str) -> str:
    """--cri-socket: unix:///path or a plain absolute path."""
    path = address.removeprefix("unix://") if address.startswith("unix://") else address
    if "://" in path or not os.path.isabs(path):
        raise ValueError(f"--cri-socket: want unix:///absolute/path, got {address!r}")
    return path


def _answers(path: str) -> bool:
    """Something listens on the unix socket at path (then it is not ours to remove)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(path)
        except OSError:
            return False
    return True


def streaming_address(text: str) -> tuple[str, int]:
    """--streaming-address: HOST[:PORT] or [V6]:PORT ("" or port 0: an
    ephemeral port on 127.0.0.1, as containerd's default stream server)."""
    text = (text or "").strip()
    if not text:
        return "127.0.0.1", 0
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    try:
        n = int(port) if port else 0
    except ValueError:
        n = -1
    if not host or not 0 <= n < 65536:
        raise ValueError(f"--streaming-address: want HOST[:PORT], got {text!r}")
    return host, n


class CriServer:
    """The gRPC server and, beside it, the streaming server that its Exec,
    Attach and PortForward answer with URLs of (streaming.py over
    enginestreams.py).

    Lazy grpc: start() binds the socket itself and listens. The first
    connection starts grpc on a socket beside it (PATH.grpc), which is then
    renamed over PATH (atomic: every later connect reaches grpc directly);
    connections already queued on the first socket are accepted and relayed to
    grpc until they close, and that socket is closed once drained."""

    DRAIN_S = 1.0     # the first socket stays open this long after the rename (connects in flight)

    def __init__(self, daemon, address: str = DEFAULT_SOCKET, streaming: str = "", cni_conf_template: str = ""):
        self.daemon = daemon
        self.cni_conf_template = cni_conf_template
        self.path = socket_path(address)
        self.streaming_host, self.streaming_port = streaming_address(streaming)
        self._server: grpc.aio.Server | None = None
        self.streams = None
        self._listener: socket.socket | None = None
        self._starting: asyncio.Task | None = None
        self._relays: set[asyncio.Task] = set()

    @property
    def grpc_started(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        from .enginestreams import EngineStreams
        from .streaming import StreamServer
        os.makedirs(os.path.dirname(self.path), mode=0o710, exist_ok=True)
        if _answers(self.path):
            raise OSError(f"another process serves {self.path}")
        for p in (self.path, self._grpc_path()):
            try:
                os.unlink(p)         # a socket left by a daemon that was killed
            except FileNotFoundError:
                pass
        streams = StreamServer(EngineStreams(self.daemon, asyncio.get_running_loop()),
                               self.streaming_host, self.streaming_port)
        streams.start()
        self.streams = streams
        if len(os.fsencode(self._grpc_path())) > 107:     # no room for the rename: grpc now, on PATH
            try:
                await self._serve_grpc(self.path)
            except BaseException:
                await asyncio.to_thread(streams.stop)
                self.streams = None
                raise
            log.info("CRI streaming server on %s", streams.base_url)
            return
        lsn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            lsn.bind(self.path)
            os.chmod(self.path, 0o660)
            lsn.listen(128)
            lsn.setblocking(False)
        except BaseException:
            lsn.close()
            await asyncio.to_thread(streams.stop)
            self.streams = None
            raise
        self._listener = lsn
        asyncio.get_running_loop().add_reader(lsn.fileno(), self._first_connection)
        log.info("CRI streaming server on %s", streams.base_url)

    def _grpc_path(self) -> str:
        return self.path + ".grpc"

    def _first_connection(self) -> None:
        asyncio.get_running_loop().remove_reader(self._listener.fileno())
        self._starting = asyncio.get_running_loop().create_task(self._start_grpc())

    async def _start_grpc(self) -> None:
        try:
            await self._serve_grpc()
        except Exception:
            log.exception("CRI: starting the gRPC server failed")
            self._close_listener()
            return
        # connections queued on the first socket: relay them; then close it
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.DRAIN_S
        while self._listener is not None:
            self._accept_queued()
            if loop.time() >= deadline:
                break
            await asyncio.sleep(0.05)
        self._accept_queued()
        self._close_listener()

    async def _serve_grpc(self, path: str | None = None) -> None:
        import grpc
        from .images import ImageServicer
        from .proto import grpc_pb
        from .runtime import RuntimeServicer
        tmp = path or self._grpc_path()
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", 16 << 20),
                                          ("grpc.max_send_message_length", 16 << 20)])
        grpc_pb.add_RuntimeServiceServicer_to_server(RuntimeServicer(self.daemon, self.streams, self.cni_conf_template), server)
        grpc_pb.add_ImageServiceServicer_to_server(ImageServicer(self.daemon), server)
        if server.add_insecure_port(f"unix:{tmp}") == 0:
            raise OSError(f"cannot listen on {tmp}")
        await server.start()
        self._server = server
        os.chmod(tmp, 0o660)
        if tmp != self.path:
            os.rename(tmp, self.path)
        log.info("CRI gRPC server started on %s", self.path)

    def _accept_queued(self) -> None:
        while self._listener is not None:
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            t = asyncio.get_running_loop().create_task(self._relay(conn))
            self._relays.add(t)
            t.add_done_callback(self._relays.discard)

    async def _relay(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        try:
            cr, cw = await asyncio.open_unix_connection(sock=conn)
            gr, gw = await asyncio.open_unix_connection(self.path)
        except OSError:
            conn.close()
            return

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
                if w.can_write_eof():
                    w.write_eof()
            except OSError:
                pass
        try:
            await asyncio.gather(pipe(cr, gw), pipe(gr, cw))
        finally:
            for w in (cw, gw):
                w.close()

    def _close_listener(self) -> None:
        if self._listener is not None:
            try:
                asyncio.get_running_loop().remove_reader(self._listener.fileno())
            except (RuntimeError, ValueError):
                pass
            self._listener.close()
            self._listener = None

    async def stop(self) -> None:
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            try:
                await self._starting
            except BaseException:
                pass
        self._close_listener()
        for t in list(self._relays):
            t.cancel()
        if self._server is not None:
            await self._server.stop(grace=1.0)
            self._server = None
        if self.streams is not None:
            await asyncio.to_thread(self.streams.stop)
            self.streams = None
        for p in (self.path, self._grpc_path()):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
