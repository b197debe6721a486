"""dockyardd's glibc malloc tuning (issue 16: the daemon's RSS): the arena cap
is set before anything else in main, an operator's MALLOC_ARENA_MAX wins, and
malloc_trim runs once after a burst of events, not while idle."""
from __future__ import annotations

import asyncio
import ctypes

import pytest

from dockyard import dockyardd


def test_arena_cap_applied_on_glibc(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    calls = []
    real = ctypes.CDLL(None)

    class Libc:
        malloc_trim = real.malloc_trim

        def mallopt(self, param, value):
            calls.append((param, value))
            return real.mallopt(param, value)
    monkeypatch.setattr(dockyardd, "_libc", Libc)
    assert dockyardd.tune_malloc() is True
    assert calls == [(dockyardd.M_ARENA_MAX, dockyardd.MALLOC_ARENAS)]


def test_environment_wins(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    monkeypatch.setattr(dockyardd, "_libc", lambda: pytest.fail("mallopt called despite MALLOC_ARENA_MAX"))
    assert dockyardd.tune_malloc() is False


def test_main_tunes_before_parsing(monkeypatch):
    order = []
    monkeypatch.setattr(dockyardd, "tune_malloc", lambda: order.append("tune"))

    def parse(argv):
        order.append("parse")
        raise SystemExit(0)
    monkeypatch.setattr(dockyardd, "parse_args", parse)
    with pytest.raises(SystemExit):
        dockyardd.main([])
    assert order == ["tune", "parse"]


class FakeEvents:
    def __init__(self):
        self.hist: list[dict] = []

    def history(self):
        return list(self.hist)

    def emit(self):
        self.hist.append({"timeNano": len(self.hist) + 1})


def test_trim_once_after_a_burst(monkeypatch):
    trims = []
    monkeypatch.setattr(dockyardd, "malloc_trim", lambda: trims.append(1))
    ev = FakeEvents()
    q = 0.02

    async def go():
        task = asyncio.create_task(dockyardd.trim_after_bursts(ev, quiet=q))
        await asyncio.sleep(q * 5)
        idle = len(trims)                   # nothing happened: no trim
        for _ in range(3):                  # a burst, each event within the quiet period
            ev.emit()
            await asyncio.sleep(q / 3)
        await asyncio.sleep(q * 6)          # quiet: one trim
        after_burst = len(trims)
        await asyncio.sleep(q * 6)          # still quiet: no more
        task.cancel()
        return idle, after_burst, len(trims)
    idle, after_burst, end = asyncio.run(go())
    assert idle == 0
    assert after_burst == idle + 1
    assert end == after_burst


def test_malloc_trim_callable():
    dockyardd.malloc_trim()     # the real one: present on glibc, a no-op elsewhere
