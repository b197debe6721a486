"""tarstream.BodyPipe: a request body read by a thread while the loop feeds it."""
import asyncio
import threading
import time

import pytest

from dockyard.api.tarstream import BodyPipe


async def chunks(parts, delay=0.0, fail=None):
    for p in parts:
        if delay:
            await asyncio.sleep(delay)
        yield p
    if fail:
        raise fail


def test_a_thread_reads_what_the_loop_feeds_with_bounded_memory():
    async def main():
        pipe = BodyPipe(limit=1000)
        parts = [bytes([i]) * 300 for i in range(20)]
        peak = []

        def reader():
            out = b""
            while True:
                time.sleep(0.001)
                peak.append(pipe._size)
                b = pipe.read(257)
                if not b:
                    return out
                out += b
        fut = asyncio.get_running_loop().run_in_executor(None, reader)
        await pipe.feed(chunks(parts))
        assert await fut == b"".join(parts) and pipe.received == 6000
        assert max(peak) <= 1000 + 300          # the feeding paused past the limit
    asyncio.run(main())


def test_read_all_close_and_abort():
    async def main():
        pipe = BodyPipe()
        fut = asyncio.get_running_loop().run_in_executor(None, pipe.read, -1)
        await pipe.feed(chunks([b"ab", b"cd"], delay=0.01))
        assert await fut == b"abcd"
        # the reader closes early: the feeding goes on to the body's end, keeping nothing
        pipe = BodyPipe(limit=10)
        pipe.close()
        await asyncio.wait_for(pipe.feed(chunks([b"x" * 100] * 5)), 2)
        assert pipe.received == 500 and pipe._size == 0
        # abort: a read blocked in the thread fails at once
        pipe = BodyPipe()
        started = threading.Event()

        def blocked():
            started.set()
            return pipe.read(10)
        fut = asyncio.get_running_loop().run_in_executor(None, blocked)
        await asyncio.get_running_loop().run_in_executor(None, started.wait)
        await asyncio.sleep(0.05)
        pipe.abort()
        with pytest.raises(ConnectionAbortedError):
            await asyncio.wait_for(fut, 2)
        # the body cut off: the reader sees an error, not a short body
        pipe = BodyPipe()
        fut = asyncio.get_running_loop().run_in_executor(None, pipe.read, -1)
        with pytest.raises(ConnectionResetError):
            await pipe.feed(chunks([b"a"], fail=ConnectionResetError("gone")))
        with pytest.raises(ConnectionAbortedError):
            await asyncio.wait_for(fut, 2)
    asyncio.run(main())
