"""Stream bytes a blocking writer produces (tarfile in a thread) as an HTTP
body, with back-pressure: the writer waits while the client is slow, so a
multi-GB save or export never piles up in memory."""
from __future__ import annotations

import asyncio
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import AsyncIterator, Callable

_QUEUE = 16          # chunks in flight
# Transfers last as long as the client reads: they get their own threads so
# they never starve the default executor the rest of the daemon relies on.
LONG_POOL = ThreadPoolExecutor(max_workers=64, thread_name_prefix="transfer")
_CHUNK = 256 * 1024


class _PipeWriter:
    def __init__(self, loop: asyncio.AbstractEventLoop, q: asyncio.Queue, gone):
        self.loop, self.q, self.gone = loop, q, gone
        self.buf = bytearray()

    def write(self, data) -> int:
        if self.gone.is_set():
            raise BrokenPipeError("client went away")
        self.buf += data
        if len(self.buf) >= _CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.buf:
            chunk, self.buf = bytes(self.buf), bytearray()
            fut = asyncio.run_coroutine_threadsafe(self.q.put(chunk), self.loop)
            while True:
                try:
                    fut.result(timeout=1.0)
                    return
                except TimeoutError:
                    if self.gone.is_set() or self.loop.is_closed():   # client or daemon gone
                        fut.cancel()
                        raise BrokenPipeError("client went away") from None

    def tell(self) -> int:           # tarfile asks in stream mode only for bookkeeping
        return 0


def thread_body(produce: Callable[[object], None]) -> AsyncIterator[bytes]:
    """`produce(file)` runs in a thread and writes the body to `file`."""
    loop = asyncio.get_running_loop()
    q: asyncio.Queue = asyncio.Queue(_QUEUE)
    gone = threading.Event()
    w = _PipeWriter(loop, q, gone)
    err: list[BaseException] = []

    def run() -> None:
        try:
            produce(w)
            w.flush()
        except BaseException as e:   # noqa: BLE001 - ends the body early; logged by the caller's view
            err.append(e)
        finally:
            asyncio.run_coroutine_threadsafe(q.put(None), loop)

    async def chunks() -> AsyncIterator[bytes]:
        fut = loop.run_in_executor(LONG_POOL, run)
        try:
            while True:
                item = await q.get()
                if item is None:
                    break
                yield item
        finally:
            gone.set()
            while not fut.done():        # unblock a writer waiting on a full queue
                try:
                    q.get_nowait()
                except asyncio.QueueEmpty:
                    await asyncio.sleep(0.01)
            await fut
    return chunks()


async def spool(req) -> str:
    """A request body (an uploaded tar) into a temp file under the image
    store's tmp dir (same filesystem as the layers); the caller unlinks it."""
    fd, path = tempfile.mkstemp(prefix="upload-", suffix=".tar", dir=req.daemon.images.tmp_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in req.stream():
                f.write(chunk)
    except BaseException:
        os.unlink(path)
        raise
    return path
