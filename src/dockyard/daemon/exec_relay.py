"""The relay of an exec run without conmon (runtime.runtimes.PipedExec):
the process's stdout and stderr pipes onto a SOCK_SEQPACKET socket in
conmon's attach format (one packet per chunk, its first byte 2 for stdout,
3 for stderr), and what arrives on that socket into the process's stdin
(EOF when the other side shuts its write half). The API then streams an
exec as it streams anything conmon attaches to (api/streams.pump_attach).

As conmon does, the stream ends when the process has exited and what it
wrote before is passed on: a child it left in the background holding the
pipes does not keep the stream open. When the client has gone, output is
read and dropped, so the process never blocks on a full pipe.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import socket

from ..runtime.runtimes import PipedExec
from .attach import CONMON_STDERR as STDERR_KIND
from .attach import CONMON_STDOUT as STDOUT_KIND

CHUNK = 32768


async def relay(px: PipedExec, sock: socket.socket) -> int:
    """Relay until the process (the runtime that waits for it) exits and the
    output it left is passed on; its exit status. The process's stdin is
    closed at the client's EOF; its other fds stay open (px.close), and sock
    is not closed either."""
    loop = asyncio.get_running_loop()
    exited = asyncio.Event()
    state = {"client": True}      # False once sending to the client failed: output is dropped

    async def readable(fd: int) -> None:
        """Until fd can be read or the process has exited."""
        fut = loop.create_future()
        loop.add_reader(fd, lambda: fut.done() or fut.set_result(None))
        waiter = asyncio.ensure_future(exited.wait())
        try:
            await asyncio.wait({fut, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            loop.remove_reader(fd)
            waiter.cancel()

    async def pipe(fd: int, kind: int) -> None:
        while True:
            try:
                data = os.read(fd, CHUNK)
            except BlockingIOError:
                if exited.is_set():
                    return           # drained: what is left belongs to a background child
                await readable(fd)
                continue
            except OSError:
                return
            if not data:
                return
            if state["client"]:
                try:
                    await loop.sock_sendall(sock, bytes([kind]) + data)
                except OSError:
                    state["client"] = False

    async def feed() -> None:
        try:
            await pump_stdin()
        finally:
            px.close_stdin()         # the process sees its EOF

    async def pump_stdin() -> None:
        while True:
            try:
                data = await loop.sock_recv(sock, CHUNK)
            except OSError:
                data = b""
            if not data:
                return               # the client's half-close: stdin's EOF
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(px.stdin, view):]
                except BlockingIOError:
                    fut = loop.create_future()
                    loop.add_writer(px.stdin, lambda: fut.done() or fut.set_result(None))
                    try:
                        await fut
                    finally:
                        loop.remove_writer(px.stdin)
                except OSError:      # the process closed its stdin
                    return

    outs = [asyncio.ensure_future(pipe(px.stdout, STDOUT_KIND)),
            asyncio.ensure_future(pipe(px.stderr, STDERR_KIND))]
    feeder = asyncio.ensure_future(feed()) if px.stdin >= 0 else None
    try:
        code = await px.proc.wait()
        exited.set()
        await asyncio.gather(*outs)
    finally:
        for t in (*outs, feeder):
            if t is not None and not t.done():
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
    return code
