"""The streaming server's backend (streaming.StreamBackend) on the engine:
exec through the engine's exec path (its own conmon, a TTY, stdin,
resizes through conmon's ctl fifo, the exit code it records), attach to
the container's conmon attach socket, port-forward by a connection made in
the pod's pinned network namespace.

The streaming server calls these from its connection threads; the
engine's objects belong to the daemon's event loop, so every engine call
goes through the loop (`run_coroutine_threadsafe`), and only the byte
copying between conmon's SOCK_SEQPACKET socket (one byte of stream type,
2 stdout or 3 stderr, then data; what is sent is the process's stdin) and
the client's streams happens in the thread, blocking.

As containerd: an exec's stdin EOF closes the process's stdin (and its
output is still copied to its end); an attach ends when the client's stdin
closes (conmon closes the container's stdin then when it was created
StdinOnce); with a TTY critest sends no size, so none is waited for.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any, Coroutine

from ..daemon.attach import CONMON_STDERR, CONMON_STDOUT
from ..daemon.podcontainers import cri_state
from ..daemon.tty import resize_container
from . import streaming

log = logging.getLogger("dockyard.cri.streams")

EXIT_WAIT = 10.0        # seconds an exec's exit code is waited for once its output ended


class EngineStreams:
    def __init__(self, daemon, loop: asyncio.AbstractEventLoop):
        self.d = daemon
        self.loop = loop

    def _call(self, coro: Coroutine, timeout: float | None = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    # ------------------------------------------------------------ exec
    def exec(self, container_id: str, cmd: list[str], tty: bool, stdin, stdout, stderr,
             resize: streaming.ResizeQueue | None) -> int:
        ex, sock = self._call(self._start_exec(container_id, cmd, tty, stdin is not None, stdout is not None,
                                               stderr is not None))
        if resize is not None:
            self._follow_resizes(resize, lambda size: self.d.execs.resize(ex, size.height, size.width))
        try:
            _copy(sock, stdin, stdout, stderr, end_on_stdin_eof=False)
        finally:
            sock.close()
        code = self._call(self._exit_code(ex), timeout=EXIT_WAIT + 5)
        if code is None:
            raise RuntimeError(f"exec {ex.id[:12]} in {container_id}: no exit code within {EXIT_WAIT:g}s")
        return code

    async def _start_exec(self, container_id: str, cmd: list[str], tty: bool, want_in: bool, want_out: bool,
                          want_err: bool):
        from ..daemon.exec import StartFailed
        c = self._running(container_id)
        ex = self.d.execs.create(c, {"Cmd": cmd, "Tty": tty, "AttachStdin": want_in, "AttachStdout": want_out,
                                     "AttachStderr": want_err})
        try:
            sock = await self.d.execs.start(ex, c, attach=True)
        except StartFailed as e:
            raise RuntimeError(str(e)) from None
        sock.setblocking(True)
        return ex, sock

    @staticmethod
    async def _exit_code(ex) -> int | None:
        try:
            await asyncio.wait_for(ex.done.wait(), EXIT_WAIT)
        except asyncio.TimeoutError:
            return None
        return ex.exit_code

    # ------------------------------------------------------------ attach
    def attach(self, container_id: str, tty: bool, stdin, stdout, stderr,
               resize: streaming.ResizeQueue | None) -> None:
        c, sock = self._call(self._connect(container_id))
        if resize is not None:
            self._follow_resizes(resize, lambda size: resize_container(self.d, c, size.height, size.width))
        try:
            _copy(sock, stdin, stdout, stderr, end_on_stdin_eof=True)
        finally:
            sock.close()

    async def _connect(self, container_id: str):
        c = self._running(container_id)
        sock = self.d.attach.connect(c, self.d.paths(c))
        sock.setblocking(True)
        return c, sock

    def _running(self, container_id: str):
        c = self.d.pod_containers.get(container_id)
        state = cri_state(c)
        if state != "running":
            raise RuntimeError(f"container {c.id} is in CONTAINER_{state.upper()} state")
        return c

    def _follow_resizes(self, q: streaming.ResizeQueue, apply) -> None:
        def follow() -> None:
            while (size := q.next()) is not None:
                if size.width <= 0 or size.height <= 0:
                    continue

                async def do(size=size) -> None:
                    try:
                        apply(size)
                    except Exception as e:      # the process is gone: nothing to resize
                        log.debug("resize to %s: %s", size, e)
                try:
                    self._call(do(), timeout=10)
                except Exception:
                    return
        threading.Thread(target=follow, name="cri-resize-apply", daemon=True).start()

    # ------------------------------------------------------------ port-forward
    def port_forward(self, pod_id: str, port: int, stream) -> None:
        netns = self._call(self._pod_netns(pod_id))
        sock = streaming.connect_in_netns(netns, port)
        streaming.splice(stream, sock)

    async def _pod_netns(self, pod_id: str) -> str | None:
        from ..daemon.pods import READY
        p = self.d.pods.get(pod_id)
        if p.state != READY:
            raise RuntimeError(f"pod sandbox {p.id} is not ready")
        return p.ns.get("net")        # None: a hostNetwork pod, the host's own


def _copy(sock: socket.socket, stdin, stdout, stderr, *, end_on_stdin_eof: bool) -> None:
    """conmon's attach socket <-> the client's streams, until the process's
    output ends (or, with end_on_stdin_eof, the client's stdin does)."""
    def pump_in() -> None:
        try:
            while data := stdin.read(32768):
                sock.sendall(data)
        except OSError:
            pass
        finally:
            try:
                sock.shutdown(socket.SHUT_WR)          # conmon closes the process's stdin (StdinOnce)
                if end_on_stdin_eof:
                    sock.shutdown(socket.SHUT_RD)      # and the copy below ends
            except OSError:
                pass
    if stdin is not None:
        threading.Thread(target=pump_in, name="cri-stdin", daemon=True).start()
    while True:
        try:
            pkt = sock.recv(65536)
        except OSError:
            return
        if not pkt:
            return
        kind, data = pkt[0], pkt[1:]
        out = stdout if kind == CONMON_STDOUT else stderr if kind == CONMON_STDERR else None
        if out is None or not data:
            continue
        try:
            out.write(data)
        except OSError:        # the client is gone
            return
