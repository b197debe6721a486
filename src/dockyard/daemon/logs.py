"""Reading a container's log (conmon's k8s-file format).

Each line: `<RFC3339Nano time> <stdout|stderr> <F|P> <content>`; P marks a
partial line (no newline yet), F the end of one."""
from __future__ import annotations

import asyncio
import datetime as _dt
import os
import time
from dataclasses import dataclass
from typing import AsyncIterator, Callable, Iterator


@dataclass
class Entry:
    time: str          # as written by conmon
    stream: str        # "stdout" | "stderr"
    partial: bool
    data: bytes        # with the newline restored for full lines

    @property
    def unix(self) -> float:
        return parse_time(self.time)

    def docker_time(self) -> str:
        """RFC3339Nano in UTC with Z, as Docker prints with -t."""
        t = self.time
        if t.endswith("+00:00"):
            return t[:-6] + "Z"
        return t


def parse_time(t: str) -> float:
    # 2026-11-28T04:08:57.319585609+00:00 -> float seconds (nanos beyond µs dropped)
    main, _, rest = t.partition(".")
    frac, tz = rest, "+00:00"
    for sep in ("+", "-", "Z"):
        if sep in rest:
            i = rest.index(sep)
            frac, tz = rest[:i], rest[i:]
            break
    if tz == "Z":
        tz = "+00:00"
    base = _dt.datetime.fromisoformat(main + tz).timestamp()
    return base + (float("0." + frac) if frac else 0.0)


def parse_line(line: bytes) -> Entry | None:
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return None
    content = parts[3] if len(parts) == 4 else b""
    partial = parts[2] == b"P"
    return Entry(parts[0].decode(), parts[1].decode(), partial, content if partial else content + b"\n")


def parse_since(value: str | None) -> float | None:
    """Docker sends since/until as unix seconds with optional fraction."""
    if value in (None, "", "0"):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _select(entries: Iterator[Entry], stdout: bool, stderr: bool, since: float | None,
            until: float | None) -> Iterator[Entry]:
    for e in entries:
        if (e.stream == "stdout" and not stdout) or (e.stream == "stderr" and not stderr):
            continue
        if since is not None or until is not None:
            t = e.unix
            if since is not None and t <= since:
                continue
            if until is not None and t > until:
                continue
        yield e


def _tail(entries: list[Entry], n: int) -> list[Entry]:
    """The last n lines (a line may span partial entries)."""
    if n < 0:
        return entries
    if n == 0:
        return []
    count = 0
    i = len(entries)
    while i > 0:
        if not entries[i - 1].partial:
            count += 1
            if count > n:
                break
        i -= 1
    return entries[i:]


async def follow(path: str, *, stdout: bool, stderr: bool, tail: int = -1, since: float | None = None,
                 until: float | None = None, follow: bool = False,
                 running: Callable[[], bool] = lambda: False,
                 exited: Callable[[], asyncio.Event] | None = None) -> AsyncIterator[Entry]:
    """Entries of the log; with follow, keep going until the container stops."""
    pos = 0
    buf = b""
    first = True
    while True:
        alive = follow and running()   # checked before reading: a stop after this read is drained next turn
        try:
            with open(path, "rb") as f:
                f.seek(pos)
                chunk = f.read()
        except FileNotFoundError:
            chunk = b""
        if chunk:
            pos += len(chunk)
            buf += chunk
            *lines, buf = buf.split(b"\n")
            entries = [e for e in (parse_line(l) for l in lines if l) if e]
            selected = list(_select(iter(entries), stdout, stderr, since, until))
            if first:
                selected = _tail(selected, tail)
            for e in selected:
                yield e
        first = False
        if not alive:
            return
        if until is not None and until <= time.time():
            return
        ev = exited() if exited else None
        try:
            if ev is not None:
                await asyncio.wait_for(ev.wait(), 0.1)
            else:
                await asyncio.sleep(0.1)
        except asyncio.TimeoutError:
            pass
