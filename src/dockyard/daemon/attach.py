"""Attach: connect API clients to conmon's attach socket.

conmon serves a SOCK_SEQPACKET socket per container; each packet it sends
is one byte of pipe type (2 = stdout, 3 = stderr) followed by data, and
what we send is written to the container's stdin. A client that attaches
before start (the docker CLI's `run` does) waits here and is connected
after `runtime create` but before `runtime start`, so it sees every byte.
"""
from __future__ import annotations

import asyncio
import socket

CONMON_STDOUT, CONMON_STDERR = 2, 3


def open_socket(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        s.connect(path)
    except OSError:
        s.close()
        raise
    s.setblocking(False)
    return s


class AttachManager:
    def __init__(self) -> None:
        self._waiters: dict[str, list[asyncio.Future]] = {}

    def wait_for_start(self, cid: str) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(cid, []).append(fut)
        return fut

    def cancel(self, cid: str, fut: asyncio.Future) -> None:
        lst = self._waiters.get(cid, [])
        if fut in lst:
            lst.remove(fut)

    def connect_waiters(self, c, paths) -> None:
        for fut in self._waiters.pop(c.id, []):
            if fut.done():
                continue
            try:
                fut.set_result(open_socket(paths.attach_socket(c.id[:12])))
            except OSError as e:
                fut.set_exception(e)

    def fail_waiters(self, cid: str, exc: BaseException) -> None:
        for fut in self._waiters.pop(cid, []):
            if not fut.done():
                fut.set_exception(exc)

    @staticmethod
    def connect(c, paths) -> socket.socket:
        return open_socket(paths.attach_socket(c.id[:12]))
