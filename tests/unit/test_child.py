"""runtime.child.Child: a child waited for through its pidfd, without a
watcher thread: its status (asyncio's convention), any number of waiters,
and a kill that leaves no zombie."""
from __future__ import annotations

import asyncio
import os
import subprocess
import threading

from dockyard.runtime.child import Child


def _spawn(*argv: str) -> Child:
    return Child(subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))


def test_its_status_and_no_thread_waits_for_it():
    async def go():
        before = threading.active_count()
        c = _spawn("sh", "-c", "exit 7")
        waiters = [asyncio.ensure_future(c.wait()) for _ in range(3)]
        assert threading.active_count() == before
        return await asyncio.gather(*waiters), await c.wait(), c.pid
    codes, again, pid = asyncio.run(go())
    assert codes == [7, 7, 7] and again == 7
    assert not os.path.exists(f"/proc/{pid}")          # reaped


def test_a_signal_is_minus_its_number():
    async def go():
        c = _spawn("sh", "-c", "kill -TERM $$")
        return await c.wait()
    assert asyncio.run(go()) == -15


def test_a_killed_child_is_reaped_without_a_waiter():
    async def go():
        c = _spawn("sleep", "100")
        c.kill()
        for _ in range(200):
            if c.returncode is not None:
                break
            await asyncio.sleep(0.01)
        return c
    c = asyncio.run(go())
    assert c.returncode == -9
    assert not os.path.exists(f"/proc/{c.pid}")
