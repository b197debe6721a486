"""The CRI's gRPC server on its own unix socket, in the daemon's event loop
(grpc.aio): started with the daemon, stopped at shutdown, the socket file
removed. Errors meet the wire here, once: `dockyard.errors` classes become
the gRPC status codes containerd returns for the same case."""
from __future__ import annotations

import asyncio
import functools
import logging
import os
from typing import Any, Awaitable, Callable

import grpc

from ..errors import Conflict, DockyardError, InvalidParameter, NotFound, NotImplementedYet, Unavailable

log = logging.getLogger("dockyard.cri")

DEFAULT_SOCKET = "unix:///run/dockyard/cri.sock"


def status_code(e: DockyardError) -> grpc.StatusCode:
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
        except DockyardError as e:
            code = status_code(e)
            log.debug("CRI %s: %s: %s", fn.__name__, code.name, e.message)
            await context.abort(code, e.message)
        except grpc.aio.AbortError:
            raise
        except Exception as e:
            log.exception("CRI %s failed", fn.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")
    return wrapper


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
    import socket
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
    enginestreams.py)."""

    def __init__(self, daemon, address: str = DEFAULT_SOCKET, streaming: str = ""):
        self.daemon = daemon
        self.path = socket_path(address)
        self.streaming_host, self.streaming_port = streaming_address(streaming)
        self._server: grpc.aio.Server | None = None
        self.streams = None

    async def start(self) -> None:
        from .enginestreams import EngineStreams
        from .images import ImageServicer
        from .proto import grpc_pb
        from .runtime import RuntimeServicer
        from .streaming import StreamServer
        os.makedirs(os.path.dirname(self.path), mode=0o710, exist_ok=True)
        if _answers(self.path):
            raise OSError(f"another process serves {self.path}")
        try:
            os.unlink(self.path)         # a socket left by a daemon that was killed
        except FileNotFoundError:
            pass
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", 16 << 20),
                                          ("grpc.max_send_message_length", 16 << 20)])
        streams = StreamServer(EngineStreams(self.daemon, asyncio.get_running_loop()),
                               self.streaming_host, self.streaming_port)
        streams.start()
        try:
            grpc_pb.add_RuntimeServiceServicer_to_server(RuntimeServicer(self.daemon, streams), server)
            grpc_pb.add_ImageServiceServicer_to_server(ImageServicer(self.daemon), server)
            if server.add_insecure_port(f"unix:{self.path}") == 0:
                raise OSError(f"cannot listen on {self.path}")
            await server.start()
            os.chmod(self.path, 0o660)
        except BaseException:
            await asyncio.to_thread(streams.stop)
            raise
        self._server = server
        self.streams = streams
        log.info("CRI streaming server on %s", streams.base_url)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=1.0)
            self._server = None
        if self.streams is not None:
            await asyncio.to_thread(self.streams.stop)
            self.streams = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
