"""Stream bytes a blocking writer produces (tarfile in a thread) as an HTTP
body, with back-pressure: the writer waits while the client is slow, so a
multi-GB save or export never piles up in memory."""
from __future__ import annotations

import asyncio
import collections
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


class BodyPipe:
    """A request body as a blocking file for a worker thread (`read(n)`),
    fed by the event loop as the body arrives: the thread unpacks while the
    upload is still coming (no spool file, no second pass over the bytes).
    At most `limit` bytes wait in memory; past that the feeding pauses
    until the thread has read half of them.

    `feed(chunks)` (a coroutine, on the loop) reads the body to its end,
    keeping nothing once the reader has closed the pipe; `close()` (either
    side) ends the reader's use of it; `abort()` (the loop) makes a read
    waiting in the thread fail at once."""

    def __init__(self, limit: int = 8 << 20):
        self._loop = asyncio.get_running_loop()
        self._limit = limit
        self._cond = threading.Condition()
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._eof = False
        self._error: BaseException | None = None
        self._closed = False
        self._paused = False
        self._room = asyncio.Event()
        self._room.set()
        self.received = 0

    # -- the loop's side
    async def feed(self, chunks: AsyncIterator[bytes]) -> None:
        try:
            async for chunk in chunks:
                if not chunk:
                    continue                         # (an empty read would look like the end)
                self.received += len(chunk)
                with self._cond:
                    if self._closed:
                        continue                     # read to the end, keep nothing
                    self._chunks.append(chunk)
                    self._size += len(chunk)
                    if self._size > self._limit:
                        self._paused = True
                        self._room.clear()
                    self._cond.notify()
                await self._room.wait()
        except BaseException as e:
            self._fail(e)
            raise
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def abort(self) -> None:
        self._fail(ConnectionAbortedError("the build was cancelled"))

    def _fail(self, e: BaseException) -> None:
        with self._cond:
            if self._error is None:
                self._error = e
            self._cond.notify_all()

    # -- the thread's side
    def read(self, n: int = -1) -> bytes:
        with self._cond:
            while not self._chunks and not self._eof and self._error is None and not self._closed:
                self._cond.wait()
            if self._error is not None and not isinstance(self._error, Exception):
                raise ConnectionAbortedError("the request body was cut off")
            if self._error is not None:
                raise ConnectionAbortedError(f"the request body was cut off: {self._error}")
            if n is None or n < 0:                   # all of it: wait for the end
                while not self._eof and self._error is None and not self._closed:
                    self._cond.wait()
                if self._error is not None:
                    raise ConnectionAbortedError("the request body was cut off")
                n = self._size
            out, want = [], n
            while self._chunks and want > 0:
                c = self._chunks.popleft()
                if len(c) > want:
                    c, rest = c[:want], c[want:]
                    self._chunks.appendleft(rest)
                out.append(c)
                want -= len(c)
                self._size -= len(c)
            if self._paused and self._size <= self._limit // 2:
                self._paused = False
                self._loop.call_soon_threadsafe(self._room.set)
            return b"".join(out)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._chunks.clear()
            self._size = 0
            if self._paused:
                self._paused = False
                self._loop.call_soon_threadsafe(self._room.set)
            self._cond.notify_all()
